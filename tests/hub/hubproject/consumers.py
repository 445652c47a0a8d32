"""The gateway endpoint of the notification hub: JWT on ?token=, ping/pong, record and ack."""

import json
import logging
import os
import time
from urllib.parse import parse_qs

import jwt
from channels.generic.websocket import AsyncWebsocketConsumer

log = logging.getLogger("hub")


def _token(scope):
    query = parse_qs(scope.get("query_string", b"").decode())
    values = query.get("token", [])
    return values[0] if values else None


class GatewayConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        token = _token(self.scope)
        try:
            claims = jwt.decode(token or "", os.environ["HUB_JWT_SECRET"], algorithms=["HS256"])
        except jwt.PyJWTError as exc:
            log.warning("refusing gateway: bad token (%s)", exc)
            # Closing before accept makes Daphne answer the handshake with HTTP 403.
            await self.close()
            return
        self.gateway = claims.get("sub", "?")
        await self.accept()
        log.info("gateway %s connected", self.gateway)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.send(json.dumps({"type": "error", "message": "text frames only"}))
            return
        try:
            message = json.loads(text_data)
        except json.JSONDecodeError:
            await self.send(json.dumps({"type": "error", "message": "not JSON"}))
            return
        if message.get("type") == "ping":
            await self.send(json.dumps({"type": "pong", "timestamp": time.time()}))
            return
        self._record(message)
        data = message.get("data") or {}
        if os.environ.get("HUB_ACKS", "1") != "0" and "id" in data:
            await self.send(json.dumps({"type": "ack", "id": data["id"]}))

    @staticmethod
    def _record(message):
        path = os.environ.get("HUB_RECORD_FILE")
        if not path:
            return
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps(message) + "\n")
