"""Epidemic reporting: notifiable case reports, CDC review, who sees what (issue 5)."""
