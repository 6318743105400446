"""The CronJob controller: Jobs started on a cron schedule.

``schedule`` parses cron lines and finds their next times in a time zone;
``decision`` holds the pure choices (missed start times, Job names and
bodies, history to delete); ``controller`` is the ``CronJobController``.
"""

from __future__ import annotations

from controllers.builtin.cronjob.controller import CronJobController
from controllers.builtin.cronjob.schedule import Schedule, ScheduleError, parse_schedule

__all__ = ["CronJobController", "Schedule", "ScheduleError", "parse_schedule"]
