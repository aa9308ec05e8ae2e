"""stat_pipeline: Asterisk/Wazo queue_log -> Wazo call-centre statistics, with Dagster."""
