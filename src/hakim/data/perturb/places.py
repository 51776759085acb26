"""Places that contain other places: a swap into one of them can leave a claim true.

"Batu Kawan di Seberang Perai" with "Asia Tenggara" for "Seberang Perai" is still true, and so is a town
replaced by its state or country. So a name listed here only replaces, and is only replaced by, a name of the
same level (region, country, state); a place not listed (a town, a village, a park) only trades places with
another unlisted one, and two names of one place ("Malaya", "Tanah Melayu") never trade. The lists hold the places Malay and English news name most, in both languages.
"""

from __future__ import annotations

REGIONS = frozenset({
    "Asia", "Asia Tenggara", "Asia Timur", "Asia Barat", "Asia Selatan", "Asia Tengah", "Eropah", "Afrika", "Amerika",
    "Amerika Utara", "Amerika Selatan", "Amerika Latin", "Timur Tengah", "Oceania", "Borneo", "Semenanjung",
    "Semenanjung Malaysia", "Nusantara", "Pasifik", "Atlantik", "Europe", "Africa", "America", "North America",
    "South America", "Latin America", "Southeast Asia", "East Asia", "South Asia", "Middle East", "Scandinavia",
    "Caribbean", "Antarctica", "Pacific", "Atlantic", "Balkans", "Mediterranean", "Sumatera", "Sumatra", "Jawa", "Java",
})
COUNTRIES = frozenset({
    "Malaysia", "Malaya", "Tanah Melayu", "Indonesia", "Singapura", "Singapore", "Brunei", "Thailand", "Filipina",
    "Philippines", "Vietnam", "Myanmar", "Kemboja", "Cambodia", "Laos", "China", "Jepun", "Japan", "Korea",
    "Korea Selatan", "Korea Utara", "South Korea", "North Korea", "India", "Pakistan", "Bangladesh", "Sri Lanka",
    "Australia", "New Zealand", "Amerika Syarikat", "United States", "US", "USA", "Britain", "Great Britain",
    "United Kingdom", "UK", "England", "Scotland", "Wales", "Ireland", "Northern Ireland", "Perancis", "France",
    "Jerman", "Germany", "Itali", "Italy", "Sepanyol", "Spain", "Belanda", "Netherlands", "Portugal", "Rusia",
    "Russia", "Kanada", "Canada", "Mexico", "Brazil", "Argentina", "Mesir", "Egypt", "Arab Saudi", "Saudi Arabia",
    "Turki", "Turkey", "Iran", "Iraq", "Syria", "Israel", "Palestin", "Palestine", "Taiwan", "Hong Kong", "Denmark",
    "Sweden", "Norway", "Finland", "Switzerland", "Austria", "Belgium", "Poland", "Greece", "Ukraine", "Nigeria",
    "Kenya", "Afrika Selatan", "South Africa", "Qatar", "Emiriah Arab Bersatu", "United Arab Emirates", "UAE",
})
STATES = frozenset({
    "Johor", "Kedah", "Kelantan", "Melaka", "Malacca", "Negeri Sembilan", "Pahang", "Perak", "Perlis", "Pulau Pinang",
    "Penang", "Sabah", "Sarawak", "Selangor", "Terengganu", "Kuala Lumpur", "Labuan", "Putrajaya",
    "Alabama", "Alaska", "Arizona", "Arkansas", "California", "Colorado", "Connecticut", "Delaware", "Florida",
    "Georgia", "Hawaii", "Idaho", "Illinois", "Indiana", "Iowa", "Kansas", "Kentucky", "Louisiana", "Maine",
    "Maryland", "Massachusetts", "Michigan", "Minnesota", "Mississippi", "Missouri", "Montana", "Nebraska", "Nevada",
    "New Hampshire", "New Jersey", "New Mexico", "New York", "North Carolina", "North Dakota", "Ohio", "Oklahoma",
    "Oregon", "Pennsylvania", "Rhode Island", "South Carolina", "South Dakota", "Tennessee", "Texas", "Utah",
    "Vermont", "Virginia", "Washington", "West Virginia", "Wisconsin", "Wyoming",
})
# Names of one place: trading one for another changes nothing.
SYNONYMS = (
    {"Malaya", "Tanah Melayu", "Persekutuan Tanah Melayu"}, {"Britain", "Great Britain", "United Kingdom", "UK"},
    {"United States", "US", "USA", "Amerika Syarikat"}, {"Pulau Pinang", "Penang"}, {"Melaka", "Malacca"},
    {"Singapura", "Singapore"}, {"Filipina", "Philippines"}, {"Kemboja", "Cambodia"}, {"Jepun", "Japan"},
    {"Belanda", "Netherlands"}, {"Emiriah Arab Bersatu", "United Arab Emirates", "UAE"}, {"Sumatera", "Sumatra"},
    {"Jawa", "Java"}, {"Eropah", "Europe"}, {"Afrika", "Africa"}, {"Asia Tenggara", "Southeast Asia"},
)
LEVELS = {**{name: "state" for name in STATES}, **{name: "country" for name in COUNTRIES},
          **{name: "region" for name in REGIONS}}


def place_level(name: str) -> str | None:
    """region, country or state for a listed place; None for every other name."""
    return LEVELS.get(name)


def same_level(first: str, second: str) -> bool:
    """Whether one name may stand for the other in a swap: the same level, and not two names of one place."""
    if any(first in names and second in names for names in SYNONYMS):
        return False
    return place_level(first) == place_level(second)
