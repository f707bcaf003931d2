import pytest

from elfctl.domain.image_ref import check_image_ref, check_tag
from elfctl.errors import InputError

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "ref",
    [
        "busybox",
        "elfctl/base:busybox",
        "localhost:5000/marketing-team:c-0123456789abcdef",
        f"127.0.0.1:5000/team-a@{DIGEST}",
        f"registry.example.com/org/sub/team_a.x:v1.2-rc@{DIGEST}",
        "[::1]:5000/team:latest",
        "a__b/c--d:_tag",
    ],
)
def test_valid_references_pass_unchanged(ref):
    assert check_image_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    ["bad image ref", "", "Team:latest", "team:", "team:-x", "team@sha256:short", "/team", "team//a",
     "host:port/team", "team:" + "t" * 129, "a" * 256, "team;rm -rf /", "-team"],
)
def test_invalid_references_name_the_flag(ref):
    with pytest.raises(InputError) as err:
        check_image_ref(ref, "--image")
    assert err.value.message == f"--image: {ref!r} is not an image reference"
    assert err.value.exit_code == 2


def test_tags():
    assert check_tag("c-0123abc") == "c-0123abc"
    for bad in ("bad tag", ".x", "x" * 129, "a/b", ""):
        with pytest.raises(InputError):
            check_tag(bad)
