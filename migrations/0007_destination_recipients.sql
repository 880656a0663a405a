CREATE TABLE `destination_recipients` (
	`workspace_id` text NOT NULL,
	`profile_id` text NOT NULL,
	`destination_id` text NOT NULL,
	`first_sent_at` integer NOT NULL,
	`last_sent_at` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `profile_id`, `destination_id`)
);
--> statement-breakpoint
-- Who received whose data before this table existed: the delivery log so far.
INSERT OR IGNORE INTO `destination_recipients` (`workspace_id`, `profile_id`, `destination_id`, `first_sent_at`, `last_sent_at`)
SELECT d.`workspace_id`, p.value, d.`destination_id`, min(d.`created_at`), max(d.`created_at`)
FROM `deliveries` d, json_each(d.`profile_ids`) p
GROUP BY d.`workspace_id`, p.value, d.`destination_id`;
