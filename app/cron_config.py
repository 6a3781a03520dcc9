"""`rq cron` configuration: one tick a second; the tick decides what is due (app.jobs.periodic)."""

from rq import cron

from app.jobs.periodic import tick
from app.queues import PERIODIC_QUEUE

# A short ttl drops ticks that could not run in time instead of piling them up.
cron.register(tick, PERIODIC_QUEUE, interval=1, ttl=5, result_ttl=0)
