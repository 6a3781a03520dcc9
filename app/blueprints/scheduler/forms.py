"""Forms of System → Scheduler; the agent's validators check the values."""

from wtforms import BooleanField, StringField

from app.blueprints.system_lists import ListRowForm


class SchedulerEntryForm(ListRowForm):
    """One cron entry."""

    schedule = StringField("Schedule", description="*/5 * * * * or @daily")
    user = StringField("User", default="root")
    command = StringField("Command")
    comment = StringField("Comment")
    enabled = BooleanField("Enabled", default=True)
