"""The site model lives in ``telemetry.site`` (the bottom layer, so every layer can use it);
this name stays importable while imports move over."""

from telemetry.site import *  # noqa: F403
from telemetry.site import DEMO_SITE_PATH, LocalFrame, Route, Site, load_site  # noqa: F401
