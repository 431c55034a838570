"""Courses, lessons, enrollments, certificates and achievements."""
