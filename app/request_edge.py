"""The outermost layer, which every answer passes on its way out: the request's id, and
`Connection: close` on an answer that begins before its request's body was all read.

Outside CORS, so that a preflight's answer carries them too. One layer, not two: each layer
wraps `send` and `receive` once more, and every request pays for each wrapper. The rules stay
where they are: the ids in app/middleware.py, why an unread body closes the connection in
app/lingering_close.py.
"""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.lingering_close import has_body
from app.middleware import REQUEST_ID_HEADER, RequestIds

CLOSE = (b"connection", b"close")


class RequestEdge:
    """Every answer carries its request's id; one that begins before the request's body was all
    read says `Connection: close`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = (REQUEST_ID_HEADER, self.ids.assign(scope).encode())
        body_read = not has_body(scope)

        async def noting_receive() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] == "http.request" and not message.get("more_body", False):
                body_read = True
            return message

        async def edge_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not body_read:
                    headers.append(CLOSE)
                headers.append(request_id)
                message = {**message, "headers": headers}
            await send(message)

        # A request without a body has nothing to note as it is read.
        await self.app(scope, receive if body_read else noting_receive, edge_send)
