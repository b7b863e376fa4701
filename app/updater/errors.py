"""Why an update did not install a new file. Each kind carries the exit status schedulers see.

Messages are sentences for an operator; they never contain a licence key.
"""
from __future__ import annotations


class ExitCode:
    UPDATED = 0
    FAILED = 1
    USAGE = 2  # click's own code for a bad command line
    ALREADY_CURRENT = 3
    LOCKED = 4
    QUOTA_REACHED = 5
    AUTH_REJECTED = 6


class UpdateError(Exception):
    exit_code = ExitCode.FAILED
    code = "UPDATE_FAILED"
    retryable = False


class TransientError(UpdateError):
    """Network trouble, a 5xx or a 408: worth another try within --retry-for."""

    code = "NETWORK_ERROR"
    retryable = True


class Unreachable(TransientError):
    """The source could not be reached at all: its name does not resolve, the connection is
    refused, reset or times out before any answer, TLS fails. Retried like any network trouble,
    except on an empty volume, where the next source is tried after a short budget
    (UPDATE_FIRST_START_RETRY_FOR) instead of the full UPDATE_RETRY_FOR."""


class SourceError(UpdateError):
    """The source answered, but not with a database (404, other 4xx, unusable listing)."""

    code = "SOURCE_ERROR"


class NotFoundAtSource(SourceError):
    code = "NOT_FOUND"


class AuthRejected(UpdateError):
    exit_code = ExitCode.AUTH_REJECTED
    code = "AUTH_REJECTED"


class QuotaReached(UpdateError):
    exit_code = ExitCode.QUOTA_REACHED
    code = "QUOTA_REACHED"


class InvalidDatabase(UpdateError):
    """The downloaded or given file is not a usable City database; the live file stays."""

    code = "INVALID_DATABASE"


class ChecksumMismatch(InvalidDatabase):
    code = "CHECKSUM_MISMATCH"


class NotNewer(UpdateError):
    """The candidate is older than the live file (allowed only with --force)."""

    exit_code = ExitCode.ALREADY_CURRENT
    code = "NOT_NEWER"


class LocalError(UpdateError):
    """This machine let us down: disk full, no permission on the database directory."""

    code = "LOCAL_ERROR"


class LockHeld(UpdateError):
    exit_code = ExitCode.LOCKED
    code = "LOCKED"


class NothingToRollBack(UpdateError):
    code = "NO_PREVIOUS_DATABASE"
