"""The peer: a minimal fastapi-users application in its documented setup.

    benchmarks/peer/.venv/bin/uvicorn app:app --app-dir benchmarks/peer --workers 1

SQLAlchemy (async) with the users table of ``fastapi-users-db-sqlalchemy``, the
JWT strategy on the bearer transport, and MariaDB via aiomysql; the same shape
as https://fastapi-users.github.io/fastapi-users/latest/configuration/full-example/
minus the OAuth and verify/reset routers the benchmark does not call.

Passwords are argon2id with t=3, m=64 MiB, p=4: vexpenses' defaults
(``vexpenses.argon2.*``), so that logins compare like for like.  The database
comes from ``PEER_DATABASE_URL``; ``run.py`` creates it, and the tables are
created at start-up as the documentation does.

It runs in its own venv (``benchmarks/peer/requirements.txt``), never in ours.
"""

import os
import uuid
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi_users import BaseUserManager, FastAPIUsers, UUIDIDMixin, schemas
from fastapi_users.authentication import (
    AuthenticationBackend,
    BearerTransport,
    JWTStrategy,
)
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from fastapi_users.password import PasswordHelper
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = os.environ.get(
    "PEER_DATABASE_URL", "mysql+aiomysql://root@127.0.0.1:3306/vexpenses_peer_bench"
)
SECRET = os.environ.get("PEER_JWT_SECRET", "peer-benchmark-secret-0123456789abcdef0123")


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


class UserRead(schemas.BaseUser[uuid.UUID]):
    pass


class UserCreate(schemas.BaseUserCreate):
    pass


class UserUpdate(schemas.BaseUserUpdate):
    pass


engine = create_async_engine(DATABASE_URL)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(session: Annotated[AsyncSession, Depends(get_async_session)]):
    yield SQLAlchemyUserDatabase(session, User)


# argon2id at vexpenses' default cost (vexpenses.argon2.time_cost/memory_cost/parallelism).
password_helper = PasswordHelper(
    PasswordHash((Argon2Hasher(time_cost=3, memory_cost=65536, parallelism=4),))
)


class UserManager(UUIDIDMixin, BaseUserManager[User, uuid.UUID]):
    reset_password_token_secret = SECRET
    verification_token_secret = SECRET


async def get_user_manager(
    user_db: Annotated[SQLAlchemyUserDatabase, Depends(get_user_db)],
):
    yield UserManager(user_db, password_helper)


bearer_transport = BearerTransport(tokenUrl="auth/jwt/login")


def get_jwt_strategy() -> JWTStrategy:
    # The run takes minutes; the one token /users/me sends must last (ours: 3600 s too).
    return JWTStrategy(secret=SECRET, lifetime_seconds=3600)


auth_backend = AuthenticationBackend(
    name="jwt", transport=bearer_transport, get_strategy=get_jwt_strategy
)
fastapi_users = FastAPIUsers[User, uuid.UUID](get_user_manager, [auth_backend])


@asynccontextmanager
async def lifespan(app: FastAPI):
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield
    await engine.dispose()


app = FastAPI(lifespan=lifespan)
app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt",
                   tags=["auth"])
app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth",
                   tags=["auth"])
app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users",
                   tags=["users"])
