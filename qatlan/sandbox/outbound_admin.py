"""Admin routes that make the sandbox call out: Atlan webhooks and Qualytics Flow actions.

    PUT    /_sandbox/webhooks   (Atlan)      configure: validation request first, then one signed
                                             event per asset changed
    PUT    /_sandbox/flows      (Qualytics)  configure: an HTTP action per operation end / anomaly
                                             status change, rendered from a template
    GET    ...                               settings (never the secret) and delivery counts
    DELETE ...                               stop; answers the last counts

The controllers listen to the world's stores (`World.set_listener`), so every write counts:
the API's, and the admin `/_sandbox/world/changes`. docs/sandbox.md documents the bodies.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qatlan.sandbox.atlan_events import VALIDATION_BODY, events_for
from qatlan.sandbox.errors import WorldError
from qatlan.sandbox.outbound import Deliverer, DeliverySettings, post_json
from qatlan.sandbox.qualytics_flows import DEFAULT_TEMPLATE, flow_messages, render

__all__ = ["AtlanWebhooks", "QualyticsFlows", "outbound_routes"]


class _Outbound(ABC):
    """One side's outbound delivery: at most one receiver at a time."""

    side = ""
    header = ""

    def __init__(self, world: Any):
        self.world = world
        self.deliverer: Deliverer | None = None
        self.extra: dict[str, Any] = {}

    def configure(self, settings: DeliverySettings, **context: Any) -> None:
        self.stop()
        self.deliverer = Deliverer(settings, {self.header: settings.secret} if settings.secret else {})
        self.world.set_listener(self.side, self.on_change)

    def stop(self) -> dict[str, Any]:
        """Stop listening and sending; the last status."""
        status = self.status()
        self.world.set_listener(self.side, None)
        if self.deliverer is not None:
            self.deliverer.close()
        self.deliverer = None
        return status

    def status(self) -> dict[str, Any]:
        d = self.deliverer
        if d is None:
            return {"configured": False}
        return {"configured": True, **d.settings.to_json(), **self.extra, "stats": d.stats()}

    @abstractmethod
    def on_change(self, *args: Any) -> None:
        """The store's listener: turn one change into bodies for the deliverer."""


class AtlanWebhooks(_Outbound):
    """Atlan's webhooks: `x-atlan-signing-secret` on every request, one event per asset."""

    side = "atlan"
    header = "x-atlan-signing-secret"

    def configure(self, settings: DeliverySettings, **context: Any) -> None:
        # Atlan sends the validation request when the webhook is created and keeps the
        # webhook only if the receiver answers 200 (UNCONFIRMED: what it does otherwise)
        status = post_json(settings.url, VALIDATION_BODY, {self.header: settings.secret} if settings.secret else {})
        if status != 200:
            got = "no answer" if status is None else f"status {status}"
            raise WorldError(f"the receiver answered the validation request with {got}, not 200; start it "
                             "(and give it the same secret) before configuring the webhook")
        super().configure(settings)
        self.extra = {"validation": status}

    def on_change(self, store: Any, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        d = self.deliverer
        if d is not None:
            for event in events_for(store, old, new, store.now_ms()):
                d.submit(event)


class QualyticsFlows(_Outbound):
    """A Qualytics Flow with an HTTP action: `x-qualytics-secret`, a templated body."""

    side = "qualytics"
    header = "x-qualytics-secret"

    def __init__(self, world: Any):
        super().__init__(world)
        self.template: Any = DEFAULT_TEMPLATE
        self.base_url = "https://qualytics.sandbox"
        self.operations = 0

    def configure(self, settings: DeliverySettings, **context: Any) -> None:
        template = settings.extra.get("template", DEFAULT_TEMPLATE)
        if not isinstance(template, (dict, list, str)):
            raise WorldError("template: a JSON object (or list or string) with {{tokens}} is required")
        self.template = template
        self.base_url = str(context.get("base_url") or self.base_url).rstrip("/")
        super().configure(settings)

    def on_change(self, store: Any, kind: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        d = self.deliverer
        if d is None:
            return
        for tokens in flow_messages(store, kind, old, new, self.base_url, self.operations + 1):
            if "operation_type" in tokens:
                self.operations += 1
            d.submit(render(self.template, tokens))


def outbound_routes(service: str, world: Any) -> list[Route]:
    """The routes of one server: /_sandbox/webhooks on Atlan, /_sandbox/flows on Qualytics."""
    if service == "atlan":
        controller: _Outbound = AtlanWebhooks(world)
        path, extra_keys = "/_sandbox/webhooks", ()
    else:
        controller = QualyticsFlows(world)
        path, extra_keys = "/_sandbox/flows", ("template",)

    async def get(request: Request) -> Response:
        return JSONResponse(controller.status())

    async def put(request: Request) -> Response:
        try:
            doc = json.loads(await request.body() or b"null")
            settings = DeliverySettings.from_json(doc, extra_keys)
            base_url = str(request.base_url)
            await run_in_threadpool(lambda: controller.configure(settings, base_url=base_url))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return JSONResponse({"error": f"the request body is not valid JSON: {exc}"}, status_code=400)
        except WorldError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(controller.status())

    async def delete(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(controller.stop))

    return [Route(path, get, methods=["GET"]), Route(path, put, methods=["PUT"]), Route(path, delete, methods=["DELETE"])]
