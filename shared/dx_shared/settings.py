"""The one settings class: environment variables `DX_*` (CONTRACT.md "Running it")."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known to everyone who reads this repository: accepted only in demo mode (`DX_DEMO_MODE=1`, `./dx up`).
DEMO_WEBHOOK_SECRET = "whsec_ZHgtdGFsZW50LWRlbW8tc2VjcmV0LW5vdC1mb3ItcHJvZHVjdGlvbg=="

SERVICES = ("nomination", "training", "progression", "reporting")

DEFAULT_PORTS = {"nomination": 8101, "training": 8102, "progression": 8103, "reporting": 8104}
DEFAULT_METRICS_PORTS = {"nomination": 9101, "training": 9102, "progression": 9103, "reporting": 9104}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DX_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/dx"
    # A service pointed at a database (or cluster) of its own; unset, it uses `database_url`. Services share
    # no tables, so each schema can live on its own server: DX_NOMINATION_DATABASE_URL and so on.
    nomination_database_url: str | None = None
    training_database_url: str | None = None
    progression_database_url: str | None = None
    reporting_database_url: str | None = None
    portal_database_url: str | None = None
    amqp_url: str = Field(
        "amqp://guest:guest@127.0.0.1:5672/",
        description="the broker; several nodes of one cluster whitespace-separated, tried in turn",
    )
    # Each service's own broker account (and possibly its own broker); `amqp_url` when not given.
    nomination_amqp_url: str | None = None
    training_amqp_url: str | None = None
    progression_amqp_url: str | None = None
    reporting_amqp_url: str | None = None
    pg_bin_dir: str | None = Field(None, description="where pg_dump/pg_restore are, when not on PATH (backups)")
    demo_mode: bool = Field(
        False, description="the demo set-up of `./dx up`: the committed demo webhook secret is allowed"
    )
    webhook_secrets: str = Field("", description="whitespace-separated whsec_ secrets; required outside demo mode")
    exchange: str = "dx.events"
    dead_letter_exchange: str = "dx.dead-letter"
    queue_prefix: str = Field("", description="prepended to queue names; lets test runs share a vhost")
    delivery_limit: int = Field(5, ge=1, description="deliveries before a failing message is dead-lettered")
    queue_expires_ms: int | None = Field(
        None, gt=0, description="delete a queue unused this long (throw-away test and benchmark queues only)"
    )
    quorum_initial_group_size: int | None = Field(
        None,
        ge=1,
        description="replicas of each new quorum queue (3 on a 3-node cluster); unset = the broker's default",
    )
    # Twice the batch: while a batch is applied the broker already delivers the next one, instead of waiting
    # for its ack (with prefetch = batch, a consumer under a backlog stood idle for a round trip per batch).
    prefetch: int = Field(64, ge=1, description="unacked deliveries a consumer holds (its channel's prefetch)")
    consumer_batch_size: int = Field(
        32, ge=1, description="most deliveries applied in one transaction (capped by the prefetch)"
    )
    consumer_batch_wait_ms: float = Field(
        3.0, ge=0, description="how long a consumer waits for more deliveries before applying a batch"
    )
    gc_gen0_threshold: int = Field(
        50_000,
        ge=0,
        description="allocations between collections of Python's youngest generation once a service has started"
        " (Python's default is 700); 0 leaves the collector as Python sets it",
    )
    outbox_batch_size: int = 200
    outbox_poll_interval: float = Field(1.0, description="seconds between outbox polls without a NOTIFY")
    outbox_publish_immediately: bool = Field(
        True, description="publish each committed outbox row at once on the relay's own channel; the loop is the fallback"
    )
    outbox_retention_days: float = Field(7.0, description="published outbox rows are kept this long, then purged")
    consumer_backoff_base: float = Field(
        0.2, gt=0, description="first back-off (s) while a consumer waits for the database or the broker"
    )
    consumer_backoff_cap: float = Field(5.0, gt=0, description="longest back-off (s) between dependency probes")
    consumer_max_strikes: int = Field(
        10, ge=1, description="in-process retries of a message whose dependency failure recurs while it answers"
    )
    broker_reconnect_interval: float = Field(
        0.5, gt=0, description="seconds between reconnection attempts to the broker"
    )
    outbox_max_attempts: int = Field(10, ge=1, description="failed publishes before an outbox row moves to outbox_dead")
    outbox_backoff_cap: float = Field(1.0, gt=0, description="longest pause (s) of the relay after a failure")
    outbox_max_age: float = Field(
        300.0, gt=0, description="/readyz fails when the oldest unpublished outbox row is older (s)"
    )
    retry_after_seconds: int = Field(5, ge=1, description="Retry-After of a 503 while a dependency is unavailable")
    pool_min_size: int = 1
    pool_max_size: int = 10
    log_level: str = "INFO"
    log_json: bool = True

    nomination_port: int = DEFAULT_PORTS["nomination"]
    training_port: int = DEFAULT_PORTS["training"]
    progression_port: int = DEFAULT_PORTS["progression"]
    reporting_port: int = DEFAULT_PORTS["reporting"]
    nomination_url: str = "http://127.0.0.1:8101"
    training_url: str = "http://127.0.0.1:8102"
    progression_url: str = "http://127.0.0.1:8103"
    reporting_url: str = "http://127.0.0.1:8104"

    # The web front (services/portal): where people go, and its OpenID Connect client (authorization code
    # with PKCE). The secret's default is the local provider's development secret (deploy/idp/clients.json).
    portal_port: int = 8100
    portal_url: str = Field("http://127.0.0.1:8100", description="the portal's public URL (https in production)")
    portal_client_id: str = "dx-portal"
    portal_client_secret: str = "dev-portal-secret-change-me-0123456789abcdef"
    portal_session_idle_minutes: int = Field(30, ge=1, description="a session unused this long ends")
    portal_session_absolute_hours: int = Field(10, ge=1, description="a session ends this long after sign-in")
    portal_service_timeout_seconds: float = 10.0
    portal_certificate_key: str = Field(
        "dev-certificate-key-change-me-0123456789abcdef",
        description="HMAC key signing 修了証 numbers (development default; set a long random value in production)",
    )
    portal_verifier_client_id: str = Field(
        "dx-portal-verifier", description="client-credentials client the public /verify page asks progression with"
    )
    portal_verifier_client_secret: str = "dev-portal-verifier-secret-change-me-0123456789abcdef"

    # E-mail reminders (`python -m portal.reminders run`), through the prefecture's SMTP relay. In demo mode
    # nothing is sent unless an SMTP host is set; outside it, the job refuses to run without one.
    smtp_host: str | None = Field(None, description="the SMTP relay reminders are sent through")
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_username: str | None = Field(None, description="SMTP AUTH user, when the relay requires one")
    smtp_password: str | None = None
    smtp_starttls: bool = Field(True, description="upgrade the connection with STARTTLS before sending")
    smtp_timeout_seconds: float = Field(30.0, gt=0)
    reminder_from: str = Field("dx-talent@example.invalid", description="the From address of reminders")
    reminder_nomination_deadline: str = Field(
        "06-30", pattern=r"^\d{2}-\d{2}$",
        description="MM-DD in each fiscal year: departments without a recommended nomination by then are reminded",
    )
    reminder_final_weeks: int = Field(
        6, ge=1, le=52, description="trainees with required sessions open are reminded in the fiscal year's last weeks"
    )
    reminder_client_id: str = Field(
        "dx-portal-reminders", description="client-credentials client the reminder job reads the services with"
    )
    reminder_client_secret: str = "dev-portal-reminders-secret-change-me-0123456789abcdef"

    nomination_metrics_port: int = Field(DEFAULT_METRICS_PORTS["nomination"], description="0 = any free port, -1 = off")
    training_metrics_port: int = DEFAULT_METRICS_PORTS["training"]
    progression_metrics_port: int = DEFAULT_METRICS_PORTS["progression"]
    reporting_metrics_port: int = DEFAULT_METRICS_PORTS["reporting"]
    metrics_host: str = Field("127.0.0.1", description="the internal interface /metrics listens on")

    # Identity (CONTRACT.md "Identity"): access tokens from an OpenID Connect issuer. The claim names are
    # settings so the same code serves the local provider, Keycloak and Microsoft Entra ID (`roles`, `scp`).
    oidc_issuer: str = "http://127.0.0.1:8090"
    oidc_audience: str = "dx-talent"
    oidc_jwks_url: str | None = Field(None, description="default: jwks_uri from the issuer's discovery document")
    oidc_discovery_url: str | None = Field(
        None, description="default: <issuer>/.well-known/openid-configuration (the portal's sign-in reads it)"
    )
    oidc_role_claim: str = "dx_role"
    oidc_department_claim: str = "dx_department"
    oidc_staff_id_claim: str = "dx_staff_id"
    oidc_scope_claim: str = "scope"
    oidc_leeway_seconds: int = Field(30, ge=0, le=300, description="clock skew allowed on exp/nbf/iat")
    oidc_jwks_min_refresh_seconds: float = Field(
        10.0, ge=0, description="an unknown key id refetches the JWKS at most this often"
    )
    oidc_fetch_timeout_seconds: float = 5.0
    oidc_token_url: str | None = Field(
        None, description="the token endpoint, when a program does not reach the issuer's public address"
    )
    loader_client_id: str = "dx-loader"
    loader_client_secret: str = Field(
        "dev-loader-secret-change-me-0123456789abcdef",
        description="client-credentials secret of the demo loader and the office CLI (development default)",
    )
    dev_mode: bool = Field(False, description="serve /docs and /openapi.json (development only)")

    # 育成計画: the period and the targets are configuration (POLICY.md §1, §4 Targets).
    plan_first_year: int = 2024
    plan_last_year: int = 2028
    plan_new_per_year: int = 200
    plan_new_total: int = 1000

    first_fiscal_year: int = Field(
        2019, description="the earliest fiscal year accepted anywhere (2019 = 令和元年度); the latest is next year"
    )
    clock_skew_seconds: float = Field(
        300.0, ge=0, description="how far a fact's time may lie ahead of this server's clock before it is refused"
    )

    max_body_bytes: int = Field(256 * 1024, description="largest webhook body accepted")
    max_upload_bytes: int = Field(32 * 1024 * 1024, description="largest CSV upload accepted")

    @property
    def amqp_urls(self) -> list[str]:
        """Every broker address of `amqp_url`, in the order given (the first is tried first)."""
        return self.amqp_url.split()

    @property
    def oidc_discovery(self) -> str:
        return self.oidc_discovery_url or f"{self.oidc_issuer.rstrip('/')}/.well-known/openid-configuration"

    @property
    def webhook_secret_list(self) -> list[str]:
        """The configured secrets; in demo mode without any, the demo secret."""
        given = self.webhook_secrets.split()
        if not given and self.demo_mode:
            return [DEMO_WEBHOOK_SECRET]
        return given

    def amqp_urls_of(self, service: str) -> list[str]:
        """The broker addresses (cluster nodes) of one service, with its own account when it has one."""
        return self.amqp_url_of(service).split()

    def amqp_url_of(self, service: str) -> str:
        """The broker URL (with its own account) of one service."""
        own: str | None = getattr(self, f"{service}_amqp_url", None)
        return own or self.amqp_url

    def database_url_of(self, service: str) -> str:
        """The database of one service: `DX_<SERVICE>_DATABASE_URL`, else `DX_DATABASE_URL`."""
        own: str | None = getattr(self, f"{service}_database_url")
        return own or self.database_url

    def port_of(self, service: str) -> int:
        port: int = getattr(self, f"{service}_port")
        return port

    def metrics_port_of(self, service: str) -> int:
        """A service without a setting of its own (a test's toy service) serves no metrics."""
        port: int = getattr(self, f"{service}_metrics_port", -1)
        return port

    @property
    def plan_years(self) -> list[int]:
        return list(range(self.plan_first_year, self.plan_last_year + 1))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
