"""Hostfleet node agent: owns one server's configuration on behalf of the master."""

__version__ = "0.1.0"
# The wire protocol the master and the agent speak; the master refuses agents it does not know.
API_VERSION = 1
