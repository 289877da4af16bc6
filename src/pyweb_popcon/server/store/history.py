"""The published snapshots, one per day."""

import json


class History:
    """A Store's history of what was published."""

    def record_history(self, day, stats):
        """Keep `stats` (already safe to publish) as the snapshot of `day`."""
        with self.transaction():
            self.query("INSERT INTO history (day, hosts, stats) VALUES "
                       f"({self.dialect.marks(3)}) ON CONFLICT (day) DO "
                       "UPDATE SET hosts = excluded.hosts, "
                       "stats = excluded.stats",
                       (day, stats["hosts"], json.dumps(stats)))

    def history(self):
        """[(day, stats)] oldest first."""
        return [(day, json.loads(stats)) for day, stats in
                self.query("SELECT day, stats FROM history ORDER BY day")]
