CREATE TABLE `deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`destination_id` text NOT NULL,
	`status` text NOT NULL,
	`message_ids` text NOT NULL,
	`profile_ids` text NOT NULL,
	`attempts` integer NOT NULL,
	`last_error` text,
	`latency_ms` integer,
	`first_attempt_at` integer NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `deliveries_destination_time` ON `deliveries` (`workspace_id`,`destination_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `deliveries_status` ON `deliveries` (`workspace_id`,`status`);--> statement-breakpoint
CREATE TABLE `destination_breakers` (
	`destination_id` text PRIMARY KEY NOT NULL,
	`state` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `destination_counters` (
	`workspace_id` text NOT NULL,
	`destination_id` text NOT NULL,
	`day` text NOT NULL,
	`received` integer DEFAULT 0 NOT NULL,
	`filtered_consent` integer DEFAULT 0 NOT NULL,
	`filtered_integrations` integer DEFAULT 0 NOT NULL,
	`not_subscribed` integer DEFAULT 0 NOT NULL,
	`delivered` integer DEFAULT 0 NOT NULL,
	`retried` integer DEFAULT 0 NOT NULL,
	`failed` integer DEFAULT 0 NOT NULL,
	`dead_lettered` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`workspace_id`, `destination_id`, `day`)
);
--> statement-breakpoint
CREATE TABLE `destinations` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`enabled` integer NOT NULL,
	`config` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch('subsec') * 1000) NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `destinations_workspace` ON `destinations` (`workspace_id`);