"""Sellers' canned replies (templates), each with at most one file."""

from __future__ import annotations

from sqlalchemy import delete, select

from bridge.core.ids import SellerID, SiteID
from bridge.core.models import Attachment, Template
from bridge.store.base import Sessions
from bridge.store.records import attachment_values, to_attachment, utc_now
from bridge.store.schema import TemplateRow


def _to_template(row: TemplateRow) -> Template:
    return Template(
        site=SiteID(row.site),
        seller_id=SellerID(row.seller_id),
        name=row.name,
        text=row.text,
        position=row.position,
        visible=row.visible,
        attachment=to_attachment(row.attachment) if row.attachment is not None else None,
    )


class TemplateStore(Sessions):
    # Templates

    async def list_templates(self, site: SiteID, seller_id: SellerID) -> list[Template]:
        query = (
            select(TemplateRow)
            .where(TemplateRow.site == site, TemplateRow.seller_id == seller_id)
            .order_by(TemplateRow.position, TemplateRow.name)
        )
        async with self._reads() as session:
            return [_to_template(row) for row in await session.scalars(query)]

    async def get_template(self, site: SiteID, seller_id: SellerID, name: str) -> Template | None:
        async with self._reads() as session:
            row = await session.get(TemplateRow, (site, seller_id, name))
            return _to_template(row) if row is not None else None

    async def put_template(self, template: Template) -> bool:
        async with self._writes.begin() as session:
            row = await session.get(TemplateRow, (template.site, template.seller_id, template.name))
            values = {
                "text": template.text,
                "position": template.position,
                "visible": template.visible,
                "attachment": attachment_values(template.attachment)
                if template.attachment is not None
                else None,
                "updated_at": utc_now(),
            }
            if row is None:
                session.add(
                    TemplateRow(
                        site=template.site,
                        seller_id=template.seller_id,
                        name=template.name,
                        **values,
                    )
                )
                return True
            for key, value in values.items():
                setattr(row, key, value)
            return False

    async def delete_template(self, site: SiteID, seller_id: SellerID, name: str) -> bool:
        async with self._writes.begin() as session:
            result = await session.execute(
                delete(TemplateRow)
                .where(
                    TemplateRow.site == site,
                    TemplateRow.seller_id == seller_id,
                    TemplateRow.name == name,
                )
                .returning(TemplateRow.name)
            )
            return result.first() is not None

    async def set_template_file(
        self, site: SiteID, seller_id: SellerID, name: str, attachment: Attachment | None
    ) -> Template | None:
        async with self._writes.begin() as session:
            row = await session.get(TemplateRow, (site, seller_id, name))
            if row is None:
                return None
            row.attachment = attachment_values(attachment) if attachment is not None else None
            row.updated_at = utc_now()
            return _to_template(row)
