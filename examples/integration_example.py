"""The Python facade end to end: a user, a course, money, a job and an event.

Run it against the backends the environment names (or embedded ones under ./.azora):

    python examples/integration_example.py
"""

from __future__ import annotations

import asyncio
import uuid

from azora_nexus import Settings
from azora_nexus.domain.ledger.models import Currency
from azora_nexus.integration import open_integration


async def main(settings: Settings) -> None:
    """Walk through every facade method once, printing what each answered."""
    tag = uuid.uuid4().hex[:8]
    async with open_integration(settings, migrate=True) as azora:
        learner = await azora.create_user(
            f"learner-{tag}@example.com", f"learner_{tag}", "a long passphrase"
        )
        poster = await azora.create_user(
            f"poster-{tag}@example.com", f"poster_{tag}", "a long passphrase"
        )
        print("user:", (await azora.get_user(learner.id)).username)

        course = await azora.create_course(
            "Ubuntu economics", [("Sharing", "..."), ("Scaling", "...")]
        )
        print("course:", (await azora.get_course(course.id)).title, len(course.lessons), "lessons")
        enrollment = await azora.enroll_course(learner.id, course.id)
        done = await azora.update_enrollment_progress(enrollment.id, 100)
        print("certificate:", done.certificate is not None)

        # A credit posted against the mining pool; the same key again changes nothing.
        for _ in range(2):
            await azora.update_balance(
                poster.id, Currency.AZR, "25", idempotency_key=f"welcome:{tag}"
            )
        await azora.update_balance(poster.id, Currency.AZR, "-5", idempotency_key=f"fee:{tag}")
        wallet = await azora.get_wallet(poster.id, Currency.AZR)
        print("balance:", wallet.balance if wallet else None, "AZR")

        job = await azora.post_job(poster.id, "Translate a lesson", "15", Currency.AZR)
        application = await azora.apply_to_job(job.id, learner.id, "I can do it", "12")
        print("application:", application.status.value, application.bid)

        event = await azora.publish("system.alert", {"message": "example done"}, source="example")
        print("event:", event.id)


if __name__ == "__main__":
    asyncio.run(main(Settings()))
