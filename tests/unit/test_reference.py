"""parse_reference: docker's ParseNormalizedNamed plus the default tag."""

from __future__ import annotations

import pytest

from emustore.errors import InvalidReference
from emustore.reference import Reference, parse_reference

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


@pytest.mark.parametrize(
    ("text", "domain", "path", "tag", "digest", "full", "familiar", "shown"),
    [
        ("nginx", "docker.io", "library/nginx", "latest", None,
         "docker.io/library/nginx:latest", "nginx", "nginx:latest"),
        ("library/nginx:1.25", "docker.io", "library/nginx", "1.25", None,
         "docker.io/library/nginx:1.25", "nginx", "nginx:1.25"),
        ("someorg/tool", "docker.io", "someorg/tool", "latest", None,
         "docker.io/someorg/tool:latest", "someorg/tool", "someorg/tool:latest"),
        ("localhost/a", "localhost", "a", "latest", None, "localhost/a:latest", "localhost/a", "localhost/a:latest"),
        ("localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", None,
         "localhost:5000/a/b:tag", "localhost:5000/a/b", "localhost:5000/a/b:tag"),
        (f"127.0.0.1:5000/a/b@{D1}", "127.0.0.1:5000", "a/b", None, D1,
         f"127.0.0.1:5000/a/b@{D1}", "127.0.0.1:5000/a/b", f"127.0.0.1:5000/a/b@{D1}"),
        (f"name:tag@{D2}", "docker.io", "library/name", "tag", D2,
         f"docker.io/library/name:tag@{D2}", "name", f"name:tag@{D2}"),
        ("index.docker.io/x", "docker.io", "library/x", "latest", None, "docker.io/library/x:latest", "x", "x:latest"),
        ("docker.io/library/nginx", "docker.io", "library/nginx", "latest", None,
         "docker.io/library/nginx:latest", "nginx", "nginx:latest"),
        ("docker.io/a/b", "docker.io", "a/b", "latest", None, "docker.io/a/b:latest", "a/b", "a/b:latest"),
        ("docker.io/library/a/b", "docker.io", "library/a/b", "latest", None,
         "docker.io/library/a/b:latest", "library/a/b", "library/a/b:latest"),
        ("quay.io/org/app:v1.2_x-Y", "quay.io", "org/app", "v1.2_x-Y", None,
         "quay.io/org/app:v1.2_x-Y", "quay.io/org/app", "quay.io/org/app:v1.2_x-Y"),
        ("Registry.Example.COM:443/a", "Registry.Example.COM:443", "a", "latest", None,
         "Registry.Example.COM:443/a:latest", "Registry.Example.COM:443/a", "Registry.Example.COM:443/a:latest"),
        ("a.b-c.d--e/e---f_g.h", "a.b-c.d--e", "e---f_g.h", "latest", None, None, None, None),
        ("ab/c__d---e.f_g", "docker.io", "ab/c__d---e.f_g", "latest", None, None, None, None),
        ("[::1]:5000/x:y", "[::1]:5000", "x", "y", None, "[::1]:5000/x:y", "[::1]:5000/x", "[::1]:5000/x:y"),
    ],
)
def test_parse(text, domain, path, tag, digest, full, familiar, shown) -> None:
    ref = parse_reference(text)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == (domain, path, tag, digest)
    if full is not None:
        assert ref.full_string() == full
        assert ref.familiar_name == familiar
        assert str(ref) == shown


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Foo", "invalid reference format: repository name must be lowercase"),
        ("Foo/bar", "invalid reference format: repository name must be lowercase"),
        ("someorg/Tool:v1", "invalid reference format: repository name must be lowercase"),
        ("localhost:5000/A", "invalid reference format: repository name must be lowercase"),
        ("Foo::bar", "invalid reference format: repository name must be lowercase"),
        ("a//b", 'invalid reference format: "a//b"'),
        ("-a", 'invalid reference format: "-a"'),
        ("a-", 'invalid reference format: "a-"'),
        ("a_._b", 'invalid reference format: "a_._b"'),
        ("a___b", 'invalid reference format: "a___b"'),
        (":tag", 'invalid reference format: ":tag"'),
        ("a:", 'invalid reference format: "a:"'),
        ("a:-x", 'invalid reference format: "a:-x"'),
        ("a@", 'invalid reference format: "a@"'),
        ("a b", 'invalid reference format: "a b"'),
        ("", 'invalid reference format: ""'),
        ("/a", 'invalid reference format: "/a"'),
        ("a/", 'invalid reference format: "a/"'),
        ("-host.io/a", 'invalid reference format: "-host.io/a"'),
        ("host.io:x/a", 'invalid reference format: "host.io:x/a"'),
        # A host-like first component that is not a valid host (docker would make it part of the path
        # with an empty domain, which nothing can pull): refused.
        ("a_b.c/x", 'invalid reference format: "a_b.c/x"'),
        ("a\nb", 'invalid reference format: "a\\nb"'),
        ("a" * 64, f"invalid repository name ({'a' * 64}), cannot specify 64-byte hexadecimal strings"),
        ("a:" + "t" * 129, f'invalid reference format: "a:{"t" * 129}"'),
        ("a@sha256:" + "a" * 63, f'invalid reference format: digest must be sha256 followed by 64 lowercase hex '
                                 f'characters: "a@sha256:{"a" * 63}"'),
        ("a@sha256:" + "A" * 64, f'invalid reference format: digest must be sha256 followed by 64 lowercase hex '
                                 f'characters: "a@sha256:{"A" * 64}"'),
        ("a@sha512:" + "a" * 128, f"unsupported digest algorithm 'sha512' in \"a@sha512:{'a' * 128}\": "
                                  "only sha256 is supported"),
    ],
)
def test_invalid(text: str, message: str) -> None:
    with pytest.raises(InvalidReference) as info:
        parse_reference(text)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_tag_length_limit() -> None:
    assert parse_reference("a:" + "t" * 128).tag == "t" * 128


def test_name_length_limit() -> None:
    # The limit counts the normalised name ("docker.io/library/" + 237 = 255).
    assert parse_reference("a" * 237).path == "library/" + "a" * 237
    with pytest.raises(InvalidReference, match="must not be more than 255 characters"):
        parse_reference("a" * 238)


def test_pathological_input_is_fast() -> None:
    with pytest.raises(InvalidReference):
        parse_reference("a" * 200 + "!")


def test_without_default_tag() -> None:
    ref = parse_reference("nginx", default_tag=False)
    assert (ref.tag, ref.digest) == (None, None)
    assert str(ref) == "nginx" and ref.full_string() == "docker.io/library/nginx"
    assert parse_reference(f"nginx@{D1}").tag is None


def test_keys() -> None:
    ref = parse_reference("nginx:1.25")
    assert ref.tag_key() == "nginx:1.25"
    assert ref.digest_key(D1) == f"nginx@{D1}"
    local = parse_reference("127.0.0.1:5000/a/b:v1")
    assert local.tag_key() == "127.0.0.1:5000/a/b:v1"
    assert local.digest_key(D2) == f"127.0.0.1:5000/a/b@{D2}"
    assert parse_reference("someorg/tool").tag_key() == "someorg/tool:latest"
    with pytest.raises(ValueError):
        parse_reference(f"x@{D1}").tag_key()


def test_names_and_registry_host() -> None:
    assert parse_reference("nginx").name == "docker.io/library/nginx"
    assert parse_reference("nginx").registry_host == "registry-1.docker.io"
    assert parse_reference("127.0.0.1:5000/a/b").name == "127.0.0.1:5000/a/b"
    assert parse_reference("127.0.0.1:5000/a/b").registry_host == "127.0.0.1:5000"
    assert parse_reference("localhost/a").registry_host == "localhost"


def test_frozen_value() -> None:
    ref = parse_reference("nginx")
    assert ref == Reference("docker.io", "library/nginx", "latest", None)
    with pytest.raises(AttributeError):
        ref.tag = "x"  # type: ignore[misc]
