"""Reading, checking, splitting and writing judge datasets."""
