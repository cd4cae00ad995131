"""Test support: isolated infrastructure, in-process services, a bus probe and webhook signing."""

from tests.support.bus import BusProbe, publish_event, publish_raw
from tests.support.services import running_app
from tests.support.webhooks import sign_webhook

__all__ = ["BusProbe", "publish_event", "publish_raw", "running_app", "sign_webhook"]
