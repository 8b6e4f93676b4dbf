"""The scoring service: projects the event streams into per-commune indicators, served and published."""
