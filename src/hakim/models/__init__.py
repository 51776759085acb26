"""Where base models come from: the hub, a local directory, or built/converted offline."""
