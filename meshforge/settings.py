"""Process settings: one pydantic-settings class, read from ``MESHFORGE_*`` variables.

The Serve application's arguments (``serve_config.yaml``) are passed to the same class as
keyword arguments, so a value set in the config file wins over the environment, and the
environment wins over the defaults below.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_PLACEHOLDER_SECRETS = frozenset(
    {"", "changethis", "change-me", "changeme", "secret", "secret_key", "default", "meshforge"}
)


class ModelDeploymentConfig(BaseModel):
    """One model deployment of the application."""

    model_id: str = Field(description="Model id, `<method>_<feature>`, e.g. `quadric_retopology`.")
    num_replicas: int = Field(1, ge=0, description="Replicas of the deployment.")
    num_cpus: float = Field(0.5, gt=0, description="CPUs reserved per replica.")
    num_gpus: float = Field(0.0, ge=0, description="GPU fraction per replica.")
    max_concurrent_jobs: int = Field(
        1, ge=1, description="Jobs the job manager dispatches to each replica at once."
    )
    default: bool = Field(False, description="Default model of its feature.")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the model's constructor."
    )
    deployment: str | None = Field(
        None,
        description="Serve deployment that hosts the model (default: the model id). Entries "
        "naming the same deployment share its replicas and weights (the TRELLIS family); the "
        "replica settings (`num_replicas`, `num_cpus`, `num_gpus`, `runtime_env`) of the "
        "group's first entry apply.",
    )
    vram_mb: int | None = Field(
        None, ge=0, description="Peak VRAM of one replica in MiB; overrides the model's spec."
    )
    runtime_env: dict[str, Any] = Field(
        default_factory=dict,
        description="Ray runtime environment of the replicas (`image_uri`, `py_executable`, "
        "`env_vars`, ...): GPU models each run in their own environment.",
    )

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.model_id


class Settings(BaseSettings):
    """Everything a MeshForge process needs to know, from one place."""

    model_config = SettingsConfigDict(
        env_prefix="MESHFORGE_", extra="ignore", hide_input_in_errors=True
    )

    host: str = Field("0.0.0.0", description="HTTP bind address of the Serve proxy.")
    port: int = Field(7842, description="HTTP port of the API.")
    public_url: str | None = Field(
        None, description="Base URL clients use; derived from the request when unset."
    )
    data_dir: Path = Field(
        Path("./data"), description="Root for the SQLite file and the local object store."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; SQLite file under data_dir when unset."
    )
    storage_backend: Literal["local", "s3"] = Field("local", description="Object store backend.")
    storage_root: Path | None = Field(
        None, description="Local store directory; data_dir/storage when unset."
    )
    s3_endpoint: str = Field("127.0.0.1:9000", description="S3 endpoint host:port.")
    s3_access_key: str = Field("", description="S3 access key.")
    s3_secret_key: str = Field("", description="S3 secret key.")
    s3_bucket: str = Field("meshforge", description="S3 bucket; created when missing.")
    s3_secure: bool = Field(False, description="Use HTTPS for S3.")
    s3_region: str | None = Field(None, description="S3 region.")

    allowed_input_dirs: list[Path] = Field(
        default_factory=list,
        description="Server directories that `*_path` inputs may read from; empty refuses them.",
    )
    image_max_size_mb: int = Field(50, description="Upload limit for images.")
    mesh_max_size_mb: int = Field(200, description="Upload limit for meshes.")
    image_max_resolution: int = Field(4096, description="Largest image side in pixels.")
    json_body_max_mb: int = Field(
        300, description="Limit for JSON bodies (base64 inputs included)."
    )
    upload_retention_hours: float = Field(24.0, description="Lifetime of uploaded files.")
    sweep_interval_s: float = Field(60.0, description="Period of the retention sweeper.")

    job_max_retries: int = Field(1, description="Retries of a job whose replica died.")
    job_orphan_timeout_s: float = Field(
        30.0, description="A processing job with no heartbeat for this long is recovered."
    )
    job_start_timeout_s: float = Field(
        300.0,
        description="A dispatched job that no replica has started (e.g. Serve is replacing a "
        "dead replica) for this long is recovered.",
    )
    heartbeat_interval_s: float = Field(2.0, description="Replica heartbeat period.")
    app_name: str = Field("meshforge", description="Serve application name (as in the config).")
    job_manager_name: str = Field("meshforge_job_manager", description="Job manager actor name.")
    ray_namespace: str = Field("meshforge", description="Ray namespace of the application.")
    user_auth_enabled: bool = Field(False, description="Require tokens (see the users API).")
    secret_key: str = Field(
        "",
        repr=False,
        description="Pepper of the stored token hashes; with auth on it must be a random value "
        "of at least 32 characters (the service refuses to start otherwise).",
    )
    registration_open: bool = Field(
        False, description="With auth on, anyone may register; otherwise only admins add users."
    )
    login_token_expire_hours: float = Field(
        24.0, gt=0, description="Lifetime of the token that a login returns."
    )
    job_submissions_per_minute: float = Field(
        30.0, gt=0, description="Sustained job submissions per user (token bucket refill)."
    )
    job_submission_burst: int = Field(
        10, ge=1, description="Job submissions a user may make at once (token bucket size)."
    )
    max_active_jobs_per_user: int = Field(
        10, ge=1, description="Queued plus processing jobs one user may have."
    )
    login_attempts_per_minute: float = Field(
        5.0, gt=0, description="Login attempts per account (token bucket size and refill)."
    )
    login_attempts_per_minute_per_address: float = Field(
        30.0, gt=0, description="Login attempts per client address (token bucket)."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS (e.g. `https://app.example.com`); empty = closed.",
    )

    weights_dir: Path = Field(
        Path("./weights"),
        description="Root of the local model weights of the GPU models (one folder per "
        "model, see cluster/README.md); nothing is downloaded at run time.",
    )
    gpu_inventory: str | None = Field(
        None,
        description="Simulated GPUs per node for nodes without NVML, e.g. `2x24576` (MiB, or "
        "`2x24G`); backed by Ray logical GPUs (`ray start --num-gpus=2`).",
    )
    gpu_poll_interval_s: float = Field(
        10.0, gt=0, description="Period of the NVML readings of every GPU node."
    )

    model_fallback: bool = Field(
        True,
        description="A spec model that is not deployed falls back to the feature's default.",
    )
    models: list[ModelDeploymentConfig] = Field(
        default_factory=list, description="Model deployments of the application."
    )

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> Settings:
        """With auth on, a missing or placeholder secret would make tokens forgeable by
        anyone who reads the database: refuse to run rather than run insecurely."""
        if self.user_auth_enabled:
            weak = self.secret_key.strip().lower() in _PLACEHOLDER_SECRETS
            if weak or len(self.secret_key) < 32:
                raise ValueError(
                    "MESHFORGE_SECRET_KEY must be a random value of at least 32 characters "
                    "when user_auth_enabled is true; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
                )
        return self

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'meshforge.db').resolve()}"

    def resolved_storage_root(self) -> Path:
        return (self.storage_root or self.data_dir / "storage").resolve()
