CREATE TABLE `intake_drops` (
	`workspace_id` text NOT NULL,
	`day` text NOT NULL,
	`reason` text NOT NULL,
	`count` integer DEFAULT 0 NOT NULL,
	PRIMARY KEY(`workspace_id`, `day`, `reason`)
);
--> statement-breakpoint
CREATE TABLE `privacy_requests` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`kind` text NOT NULL,
	`status` text NOT NULL,
	`subject_hint` text NOT NULL,
	`subject_hash` text NOT NULL,
	`profile_ids` text DEFAULT '[]' NOT NULL,
	`identifier_hashes` text DEFAULT '[]' NOT NULL,
	`job_id` text,
	`stores` text DEFAULT '{}' NOT NULL,
	`destinations` text DEFAULT '{}' NOT NULL,
	`result_key` text,
	`result_bytes` integer,
	`error` text,
	`requested_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`finished_at` integer
);
--> statement-breakpoint
CREATE INDEX `privacy_requests_workspace_time` ON `privacy_requests` (`workspace_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `privacy_requests_subject` ON `privacy_requests` (`workspace_id`,`subject_hash`);--> statement-breakpoint
CREATE TABLE `privacy_settings` (
	`workspace_id` text PRIMARY KEY NOT NULL,
	`settings` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `suppressions` (
	`workspace_id` text NOT NULL,
	`key_hash` text NOT NULL,
	`id` text NOT NULL,
	`hint` text NOT NULL,
	`reason` text NOT NULL,
	`request_id` text,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `key_hash`)
);
--> statement-breakpoint
CREATE INDEX `suppressions_id` ON `suppressions` (`id`);--> statement-breakpoint
ALTER TABLE `profiles` ADD `consent` text DEFAULT '{}' NOT NULL;