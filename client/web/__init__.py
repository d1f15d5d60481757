"""The upload page for the served `esc` ensemble (Flask): ``python -m client.web``."""

from client.web.app import create_app

__all__ = ["create_app"]
