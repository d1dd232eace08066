"""The recommendations read model as the generic projector, replay and verification see it."""

from projections.projection import Projection
from projections.recommendations.project import NAME, project
from projections.recommendations.writer import write_recommendations

RECOMMENDATIONS = Projection(
    name=NAME,
    project=project,
    write_batch=write_recommendations,
    tables={
        "event_log": ("*", "event_id"),
        "inspections": ("*", "inspection_id"),
        "recommendations": ("*", "recommendation_id"),
        "recommendation_states": ("*", "recommendation_id, stream_version"),
        "inspection_counts": ("*", "inspection_id"),
        "committee_updates": ("*", "committee, meeting_date"),
    },
    newest_event_sql="SELECT max(recorded_at) FROM event_log",
)
