"""The error hierarchy: every failure a client can cause or see has a stable code and an HTTP status.

The HTTP layer maps these in one handler; adapters and the lookup service raise them and never
know about Flask. Messages are fixed sentences: they never contain the raw input.
"""


class GeoIPError(Exception):
    code = "INTERNAL_ERROR"
    status = 500
    message = "The lookup failed."

    def __init__(self, message: str | None = None):
        super().__init__(message or self.message)
        if message:
            self.message = message

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message}


class InvalidTarget(GeoIPError):
    code = "INVALID_TARGET"
    status = 400
    message = "The target is neither a valid IP address nor a valid domain name."


class BadRequest(GeoIPError):
    code = "BAD_REQUEST"
    status = 400
    message = "The request is malformed."


class InvalidFields(GeoIPError):
    code = "INVALID_FIELDS"
    status = 400
    message = "fields names a path the result document does not have."


class BatchTooLarge(GeoIPError):
    code = "BATCH_TOO_LARGE"
    status = 413
    message = "The batch has more targets than this server accepts."


class AddressNotFound(GeoIPError):
    code = "IP_ADDRESS_NOT_FOUND"
    status = 404
    message = "The address is not in the City database."


class AddressReserved(GeoIPError):
    code = "IP_ADDRESS_RESERVED"
    status = 422
    message = "The address belongs to a reserved range (private, loopback, link-local, multicast, documentation or similar)."


class DomainNotFound(GeoIPError):
    code = "DOMAIN_NOT_FOUND"
    status = 404
    message = "The domain name does not exist or has no IPv4/IPv6 addresses."


class DnsTimeout(GeoIPError):
    code = "DNS_TIMEOUT"
    status = 504
    message = "The DNS servers did not answer in time."


class DnsFailure(GeoIPError):
    code = "DNS_FAILURE"
    status = 502
    message = "The DNS servers could not resolve the name."


class DatabaseUnavailable(GeoIPError):
    code = "DATABASE_UNAVAILABLE"
    status = 503
    message = "No City database is loaded."


class NotFound(GeoIPError):
    code = "NOT_FOUND"
    status = 404
    message = "No such resource."


class MethodNotAllowed(GeoIPError):
    code = "METHOD_NOT_ALLOWED"
    status = 405
    message = "The method is not allowed for this resource."


class PayloadTooLarge(GeoIPError):
    code = "PAYLOAD_TOO_LARGE"
    status = 413
    message = "The request body is too large."


class Unauthorized(GeoIPError):
    code = "AUTHORIZATION_INVALID"
    status = 401
    message = "The account ID or licence key is not accepted."


class TimezoneBackendUnavailable(Exception):
    """Raised by a time-zone index that cannot answer now (PostGIS down or slow).

    Never reaches a client: the lookup service degrades the result instead.
    """
