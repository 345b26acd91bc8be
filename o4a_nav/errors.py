"""Exceptions for bad user input. The CLI prints them as one clear line (exit status 2);
nodes log them and refuse the request instead of crashing."""


class UserError(Exception):
    """Base class: an error caused by the user's input or files, with a message that says
    what is wrong and where (file, field, topic)."""


class WorldFileError(UserError):
    """A world description file is missing, unreadable or invalid."""


class BagError(UserError):
    """A rosbag2 folder is missing, unreadable, or lacks a required topic."""


class ModelLoadError(UserError):
    """A model directory is missing, corrupt or incompatible."""


class ImageFormatError(UserError):
    """An image is empty, has an unsupported encoding or inconsistent size."""
