CREATE TABLE `account_links` (
	`workspace_id` text NOT NULL,
	`profile_id` text NOT NULL,
	`group_id` text NOT NULL,
	`source_id` text,
	`linked_at` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `profile_id`, `group_id`)
);
--> statement-breakpoint
CREATE INDEX `account_links_group` ON `account_links` (`workspace_id`,`group_id`);--> statement-breakpoint
CREATE TABLE `accounts` (
	`workspace_id` text NOT NULL,
	`group_id` text NOT NULL,
	`traits` text DEFAULT '{}' NOT NULL,
	`trait_meta` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`last_source_id` text,
	`last_message_id` text,
	`version` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `group_id`)
);
--> statement-breakpoint
CREATE TABLE `profile_events` (
	`workspace_id` text NOT NULL,
	`message_id` text NOT NULL,
	`profile_id` text NOT NULL,
	`type` text NOT NULL,
	`event` text,
	`timestamp` integer NOT NULL,
	`source_id` text,
	`payload` text NOT NULL,
	PRIMARY KEY(`workspace_id`, `message_id`)
);
--> statement-breakpoint
CREATE INDEX `profile_events_profile_time` ON `profile_events` (`workspace_id`,`profile_id`,`timestamp`);--> statement-breakpoint
CREATE TABLE `profile_identifiers` (
	`workspace_id` text NOT NULL,
	`type` text NOT NULL,
	`value` text NOT NULL,
	`profile_id` text NOT NULL,
	`source_id` text,
	`first_seen_at` integer NOT NULL,
	`last_seen_at` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `type`, `value`)
);
--> statement-breakpoint
CREATE INDEX `profile_identifiers_profile` ON `profile_identifiers` (`workspace_id`,`profile_id`);--> statement-breakpoint
CREATE TABLE `profiles` (
	`workspace_id` text NOT NULL,
	`profile_id` text NOT NULL,
	`canonical_id` text,
	`user_id` text,
	`email` text,
	`phone` text,
	`first_name` text,
	`last_name` text,
	`traits` text DEFAULT '{}' NOT NULL,
	`trait_meta` text DEFAULT '{}' NOT NULL,
	`computed_traits` text DEFAULT '{}' NOT NULL,
	`segments` text DEFAULT '[]' NOT NULL,
	`created_at` integer NOT NULL,
	`first_seen_at` integer,
	`last_seen_at` integer,
	`updated_at` integer NOT NULL,
	`last_source_id` text,
	`last_message_id` text,
	`version` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `profile_id`)
);
--> statement-breakpoint
CREATE INDEX `profiles_email` ON `profiles` (`workspace_id`,`email`);--> statement-breakpoint
CREATE INDEX `profiles_user_id` ON `profiles` (`workspace_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `profiles_last_name` ON `profiles` (`workspace_id`,`last_name`);--> statement-breakpoint
CREATE INDEX `profiles_first_name` ON `profiles` (`workspace_id`,`first_name`);--> statement-breakpoint
CREATE INDEX `profiles_phone` ON `profiles` (`workspace_id`,`phone`);