"""The networks, their weight files and the shipped models."""
