import pytest

from geo import (
    Position,
    centre,
    country_positions,
    geoip_country_codes,
    great_circle_km,
    ip_country,
    is_public_address,
    locate_ip,
)


def test_great_circle_matches_known_distance():
    london, new_york = Position(51.5074, -0.1278), Position(40.7128, -74.0060)
    assert great_circle_km(london, new_york) == pytest.approx(5570, rel=0.01)


def test_centre_is_spherical_mean_across_the_antimeridian():
    middle = centre([Position(0, 170), Position(0, -170)])
    assert middle.latitude == pytest.approx(0)
    assert abs(middle.longitude) == pytest.approx(180)


def test_centre_of_nothing_is_none_and_of_antipodes_is_the_first():
    assert centre([]) is None
    assert centre([Position(0, 0), Position(0, 180)]) == Position(0, 0)


@pytest.mark.parametrize(
    ("address", "country"),
    [("200.147.67.142", "BR"), ("2804:14c::1", "BR"), ("8.8.8.8", "US"), ("81.2.69.160", "GB")],
)
def test_public_addresses_geolocate_to_their_country(address, country):
    assert ip_country(address) == country
    assert locate_ip(address) == country_positions()[country]


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "127.0.0.1", "192.168.1.1", "224.0.0.1", "::1", "nope"]
)
def test_private_reserved_and_invalid_addresses_have_no_country(address):
    assert not is_public_address(address)
    assert locate_ip(address) is None


def test_every_country_has_a_position_on_the_globe():
    positions = country_positions()
    assert len(positions) > 245
    assert all(-90 <= p.latitude <= 90 and -180 <= p.longitude <= 180 for p in positions.values())


def test_every_country_geoip_can_answer_has_a_position():
    # "EU" is geoip2fast's label for blocks registered to Europe as a whole.
    missing = set(geoip_country_codes()) - set(country_positions()) - {"EU"}
    assert missing == set()


def test_centres_in_bulk_are_centre_of_each_party():
    import random

    import numpy as np

    from geo import ANTIPODAL, centre, centres

    rng = random.Random(5)
    parties = [
        [Position(rng.uniform(-80, 80), rng.uniform(-180, 180)) for _ in range(rng.randint(1, 4))]
        for _ in range(300)
    ]
    parties += [[], [Position(0, 0), Position(0, 180)]]  # nobody located; players cancel out
    vectors = np.full((len(parties), 4, 3), np.nan)
    for row, party in enumerate(parties):
        for column, position in enumerate(party):
            vectors[row, column] = position.unit_vector()
    bulk = centres(vectors)
    assert bulk[-2] is None
    assert bulk[-1] is ANTIPODAL  # centre() decides: its first player
    for party, middle in zip(parties[:-2], bulk[:-2], strict=True):
        assert middle == pytest.approx(centre(party), abs=1e-9)
