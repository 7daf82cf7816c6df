import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vexpenses_core import Base, UTCDateTime, utcnow


class Greeting(Base):
    __tablename__ = "hello_greetings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    message: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime.datetime] = mapped_column(UTCDateTime, default=utcnow)
    greeted_at: Mapped[datetime.datetime | None] = mapped_column(UTCDateTime, default=None)
