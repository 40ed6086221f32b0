"""Through the gateway and real sidecars: data the blob store lost is an error the client sees,
never a clean, short answer."""

import uuid

import pytest

pytestmark = pytest.mark.integration
CSV = {"content-type": "text/csv"}


def two_part_dataset(gateway) -> tuple[str, list[str]]:
    name = f"lossy-{uuid.uuid4().hex[:8]}"
    upload = gateway.post(f"/api/datasets/{name}/uploads?target=y&task=classification").json()["upload_id"]
    for number in (1, 2):
        rows = "".join(f"{number * 1000 + i},{'ab'[i % 2]}\n" for i in range(500))
        reply = gateway.put(
            f"/api/datasets/{name}/uploads/{upload}/parts/{number}", content="x,y\n" + rows, headers=CSV
        )
        assert reply.status_code == 200, reply.text
    assert gateway.post(f"/api/datasets/{name}/uploads/{upload}/commit").status_code == 201
    parts = [p["key"] for p in gateway.get(f"/api/datasets/{name}/versions/1").json()["parts"]]
    assert len(parts) == 2
    return name, parts


def lose(stack, key: str) -> None:
    # The local blob binding keeps each blob as a file under the app folder's .data/blobs.
    (stack.workdir / ".data" / "blobs" / f"{key}.parquet").unlink()


@pytest.mark.parametrize("which", [0, 1])
def test_a_download_with_a_part_lost_is_a_500_that_says_so_before_any_byte(stack, gateway, which):
    # Checked before the first byte: once streaming, daprd would end a broken-off body cleanly.
    name, parts = two_part_dataset(gateway)
    lose(stack, parts[which])
    for fmt in ("csv", "parquet"):
        reply = gateway.get(f"/api/datasets/{name}/versions/1/data?format={fmt}")
        assert reply.status_code == 500, reply.text[:200]
        assert "lost from the blob store" in reply.json()["detail"] and parts[which] in reply.json()["detail"]
    rows = gateway.get(f"/api/datasets/{name}/versions/1/rows?offset=0&limit=1000")
    assert rows.status_code == 500 and "lost" in rows.json()["detail"]
