CREATE INDEX `deliveries_time` ON `deliveries` (`workspace_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `profile_events_time` ON `profile_events` (`workspace_id`,`timestamp`);