"""What the page tests of the user-data lists (Web domains, Domain names, Mail domains, Mailboxes) share."""

from __future__ import annotations


def check_marks_create_in_flight(app, client, alice, path, model, label, prefix, opened_at):
    """A row whose node has yet to confirm it shows "creating…" with no link and no Delete, and the table
    refreshes itself every 5 s while one is listed; a confirmed row has both, and no refresh is set."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from app import models
    from app.extensions import db

    index = getattr(models, model)
    with app.app_context():
        owner = db.session.scalar(select(models.User.id).where(models.User.name == "alice"))
        ready = index(**{label: "ready@example.org" if label == "address" else "ready.example.org"},
                      owner_id=owner, node_id=alice)
        claim = index(**{label: "new@example.org" if label == "address" else "new.example.org"},
                      owner_id=owner, node_id=alice, claimed_at=datetime.now(UTC))
        db.session.add_all([ready, claim])
        db.session.commit()
        ids = ready.id, claim.id

    def row(text: str, item_id: int) -> str:
        return text[text.index(f'id="{prefix}-{item_id}"'):].split("</tr>")[0]

    table = client.get(path, headers={"HX-Request": "true"}).text
    assert table.lstrip().startswith("<div") and "every 5s" in table
    confirmed, creating = row(table, ids[0]), row(table, ids[1])
    assert 'data-state="creating"' in creating and "<a " not in creating and "Delete" not in creating, creating
    assert 'data-state="creating"' not in confirmed and "Delete" in confirmed, confirmed
    if opened_at:
        assert f'href="{opened_at.format(id=ids[0])}"' in confirmed, confirmed

    with app.app_context():
        db.session.execute(db.update(index).where(index.id == ids[1]).values(claimed_at=None))
        db.session.commit()
    table = client.get(path, headers={"HX-Request": "true"}).text
    assert "every 5s" not in table and 'data-state="creating"' not in table and "Delete" in row(table, ids[1])
