"""The mailer's answers, declared once: the OpenAPI document is generated from them."""

import datetime
from typing import Literal

from vexpenses_core.paginator import PageQuery
from vexpenses_core.schemas import Reply, choice

from .messages import KINDS
from .models import FAILED, SENDING, SENT

STATUSES = (SENT, FAILED, SENDING)


class DeliveryList(PageQuery):
    """Empty is no filter."""

    status: choice(STATUSES) = None
    kind: choice(KINDS) = None


class MailDelivery(Reply):
    id: int = None
    kind: Literal[KINDS] = None
    user_id: int | None = None
    recipient: str = None
    subject: str = None
    status: Literal[SENT, FAILED, SENDING] = None
    attempts: int = None
    last_error: str | None = None
    message_id: str | None = None
    created_at: datetime.datetime = None
    sent_at: datetime.datetime | None = None
