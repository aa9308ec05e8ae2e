"""What people read: the statistics API (wazo-call-logd compatible) and the supervisor dashboard."""
