"""The demo world's content: names, places, courses, jobs and memos, the same on every run.

Every choice is drawn from a `random.Random` seeded with a string naming the thing chosen
(`"user:42"`): string seeds hash with SHA-512, so the draws do not depend on
PYTHONHASHSEED, the platform, or how many other things are seeded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from azora_nexus.domain.education.schemas import CourseCreate, LessonCreate

EMAIL_DOMAIN = "demo.azora.dev"
# The one password of every demo user, printed by `azora seed`: demo data, never production.
DEMO_PASSWORD = "azora-demo-password"

FIRST_NAMES = (
    "Thandi", "Sipho", "Amara", "Kwame", "Zanele", "Tariq", "Naledi", "Chidi", "Lerato",
    "Femi", "Ayanda", "Imani", "Kofi", "Nomvula", "Tendai", "Zuri", "Bongani", "Esi",
    "Lindiwe", "Oluwaseun", "Palesa", "Thabo", "Wanjiru", "Yaw", "Fatima", "Musa",
)  # fmt: skip
LAST_NAMES = (
    "Dlamini", "Nkosi", "Okafor", "Mensah", "Mokoena", "Abebe", "Ndlovu", "Achieng",
    "Khumalo", "Adeyemi", "Botha", "Mthembu", "Osei", "Banda", "Moyo", "Kamau",
    "Sithole", "Diallo", "Naidoo", "Van Wyk", "Mahlangu", "Owusu", "Zulu", "Keita",
)  # fmt: skip
CITIES = (
    "Johannesburg", "Cape Town", "Durban", "Lagos", "Nairobi", "Accra", "Kigali",
    "Addis Ababa", "Gaborone", "Lusaka", "Harare", "Dakar", "Kampala", "Pretoria",
)  # fmt: skip
INTERESTS = (
    "renewable energy", "fintech", "community health", "web development", "urban farming",
    "data science", "music production", "small business", "teaching", "logistics",
)  # fmt: skip
TOPICS = (
    "Blockchain Fundamentals", "Python for Data Analysis", "Financial Literacy",
    "Solar Energy Systems", "Digital Marketing", "Mobile App Development",
    "Sustainable Agriculture", "Entrepreneurship 101", "Cybersecurity Basics",
    "Machine Learning Foundations", "Project Management", "UX Design Essentials",
)  # fmt: skip
LESSON_TITLES = (
    "Welcome and overview", "Core concepts", "Tools of the trade", "Hands-on practice",
    "A case study", "Common pitfalls", "Your first project", "Review and next steps",
)  # fmt: skip
JOB_TITLES = (
    "Build a landing page for a co-op", "Translate a brochure into isiZulu",
    "Design a logo for a solar start-up", "Set up bookkeeping for a spaza shop",
    "Write a Python script to clean survey data", "Film a short promo video",
    "Audit a small office network", "Tutor matric mathematics",
    "Create a social media calendar", "Fix a React Native checkout screen",
)  # fmt: skip
MEMOS = (
    "Lunch", "Thanks for the tutoring", "Taxi fare", "Shared data bundle", "Study group snacks",
    "Birthday gift", "Market stall goods", "Paying you back", "Course notes", None,
)  # fmt: skip


def draw(*name: object) -> random.Random:
    """A generator that always gives the same draws for the same `name`."""
    return random.Random(":".join(map(str, name)))


def username(index: int) -> str:
    """`user00042`: the demo user number `index`."""
    return f"user{index:05d}"


def email(index: int) -> str:
    """`user00042@demo.azora.dev`."""
    return f"{username(index)}@{EMAIL_DOMAIN}"


@dataclass(frozen=True)
class DemoProfile:
    display_name: str
    bio: str
    location: str
    avatar_url: str


def profile(index: int) -> DemoProfile:
    """Demo user `index`'s name, bio, city and avatar."""
    rng = draw("user", index)
    name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    first, second = rng.sample(INTERESTS, 2)
    return DemoProfile(
        display_name=name,
        bio=f"Into {first} and {second}. Learning and earning on Azora.",
        location=rng.choice(CITIES),
        avatar_url=f"https://avatars.{EMAIL_DOMAIN}/{username(index)}.png",
    )


def course_title(index: int) -> str:
    """The title of demo course `index`: a topic, then a part number past the first round."""
    topic = TOPICS[index % len(TOPICS)]
    part = index // len(TOPICS)
    return topic if part == 0 else f"{topic}, part {part + 1}"


def course(index: int) -> CourseCreate:
    """Demo course `index` with 4 to 8 lessons in order."""
    rng = draw("course", index)
    title = course_title(index)
    lessons = [
        LessonCreate(
            title=f"{position + 1}. {lesson}",
            content=f"{lesson} of {title}: reading, a worked example and a short exercise.",
        )
        for position, lesson in enumerate(LESSON_TITLES[: rng.randint(4, len(LESSON_TITLES))])
    ]
    return CourseCreate(
        title=title,
        description=f"A self-paced course on {title.lower()} for Azora learners.",
        lessons=lessons,
    )


def job_title(index: int) -> str:
    """The title of demo job `index`, numbered so that every job has its own."""
    return f"{JOB_TITLES[index % len(JOB_TITLES)]} (#{index + 1:04d})"
