CREATE TABLE `destination_recipients` (
	`workspace_id` text NOT NULL,
	`profile_id` text NOT NULL,
	`destination_id` text NOT NULL,
	`first_sent_at` integer NOT NULL,
	`last_sent_at` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `profile_id`, `destination_id`)
);
