"""ASGI entry point: `daphne hubproject.asgi:application`."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hubproject.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from hubproject.consumers import GatewayConsumer  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": URLRouter([path("ws/gateway/", GatewayConsumer.as_asgi())]),
    }
)
