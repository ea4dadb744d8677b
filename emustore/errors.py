"""Errors that end a command with one clear line for the user."""


class EmustoreError(Exception):
    """Base of every error emustore reports; its message is one line, shown as is."""

    exit_code = 1


class InvalidReference(EmustoreError):
    """A reference that is not a valid docker image reference."""


class RegistryError(EmustoreError):
    """The registry refused, failed or could not be reached."""


class NotFound(RegistryError):
    """The repository, tag, manifest or blob does not exist (or access is denied)."""


class ManifestError(EmustoreError):
    """A manifest, index or config that emustore cannot or will not use."""


class DigestMismatch(EmustoreError):
    """Content whose sha256 differs from the digest that names it."""


class LayerError(EmustoreError):
    """A layer that cannot be decompressed, parsed or applied."""


class StoreError(EmustoreError):
    """The data root is unusable or an index in it is malformed."""


class NoSuchImage(StoreError):
    """No image in the root matches the reference, id or id prefix ("No such image: …")."""

    def __init__(self, name: object) -> None:
        super().__init__("No such image: %s" % name)


class UsageError(EmustoreError):
    """An option value the command cannot use (docker's CLI exits 125 for these)."""

    exit_code = 125
