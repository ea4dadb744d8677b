"""Container names: docker's validity rule and generated `adjective_surname` names."""

from __future__ import annotations

import re
import secrets

from emustore.errors import EmustoreError

VALID_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")

# Our own word lists, in the shape of docker's generator (an adjective, "_", a scientist's surname).
ADJECTIVES = (
    "agile", "bold", "brave", "calm", "clever", "curious", "eager", "fearless", "gentle", "happy",
    "keen", "lucid", "merry", "nimble", "patient", "quiet", "serene", "steady", "tender", "witty",
)
SURNAMES = (
    "bohr", "curie", "darwin", "euler", "faraday", "galileo", "hopper", "hypatia", "kepler", "lamarr",
    "lovelace", "meitner", "newton", "noether", "pascal", "planck", "ride", "turing", "volta", "yalow",
)


class InvalidName(EmustoreError):
    """A --name docker refuses."""


def check_name(name: str) -> str:
    """The name without its leading "/", or InvalidName with docker's message."""
    if not VALID_NAME.fullmatch(name):
        raise InvalidName("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" % name)
    return name.removeprefix("/")


def generate_name(taken: set[str]) -> str:
    """A random free `adjective_surname`; a digit is appended after the first clash, as docker does."""
    attempt = 0
    while True:
        name = "%s_%s" % (secrets.choice(ADJECTIVES), secrets.choice(SURNAMES))
        if attempt:
            name += str(secrets.randbelow(10))
        if name not in taken:
            return name
        attempt += 1
