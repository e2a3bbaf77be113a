"""Facilities: the controlled workplaces reviewers and leads must connect from (DESIGN: 'personal laptop,
any country'). A facility has a country, which must be one of the deployment's allowed countries of
processing, and the networks (CIDRs) its machines connect from.
"""

from __future__ import annotations

import ipaddress

from sqlalchemy import select
from sqlalchemy.orm import Session

from earshot.access.models import Facility
from earshot.config import Settings

FACILITY_ROLES = ("reviewer", "lead")  # roles bound to a facility's networks


class FacilityError(ValueError):
    """A facility cannot be created or used as asked; the message says why."""


def parse_networks(networks: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse CIDRs strictly (host bits must be zero), refusing 'everything' networks."""
    parsed = []
    for text in networks:
        try:
            net = ipaddress.ip_network(text.strip(), strict=True)
        except ValueError as exc:
            raise FacilityError(f"not a network in CIDR notation: {text.strip()!r}") from exc
        if net.prefixlen == 0:
            raise FacilityError("a facility network cannot be the whole internet")
        parsed.append(net)
    if not parsed:
        raise FacilityError("a facility needs at least one network")
    return parsed


def create_facility(
    session: Session, name: str, country: str, networks: list[str], *, settings: Settings | None = None
) -> Facility:
    """Create a facility; refuses a country outside `settings.allowed_countries` (default: Settings())."""
    if settings is None:
        from earshot.config import Settings as _S

        settings = _S()
    country = country.strip().upper()
    allowed = [c.upper() for c in settings.allowed_countries]
    if country not in allowed:
        raise FacilityError(
            f"country {country!r} is not an allowed country of processing ({', '.join(allowed) or 'none'})"
        )
    name = name.strip()
    if not name or len(name) > 64:
        raise FacilityError("a facility needs a name of 1 to 64 characters")
    if session.scalar(select(Facility).where(Facility.name == name)) is not None:
        raise FacilityError(f"a facility named {name!r} already exists")
    nets = parse_networks(networks)
    facility = Facility(name=name, country=country, networks=",".join(str(n) for n in nets))
    session.add(facility)
    session.flush()
    return facility


def find_facility(session: Session, ref: str) -> Facility | None:
    """A facility by id or by name."""
    return session.get(Facility, ref) or session.scalar(select(Facility).where(Facility.name == ref))


def networks_of(facility: Facility) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    out = []
    for text in (facility.networks or "").split(","):
        if text.strip():
            try:
                out.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                continue
    return out


def address_allowed(facility: Facility | None, ip: str, settings: Settings) -> tuple[bool, str]:
    """(allowed, reason). Unparseable addresses, missing facilities and disallowed countries are refused."""
    if facility is None:
        return False, "no facility assigned"
    if facility.country.upper() not in [c.upper() for c in settings.allowed_countries]:
        return False, "facility country is not an allowed country of processing"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False, "client address unknown"
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    for net in networks_of(facility):
        if addr.version == net.version and addr in net:
            return True, "ok"
    return False, "client address is outside the facility's networks"
