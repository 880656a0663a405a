CREATE TABLE `warehouse_exports` (
	`workspace_id` text NOT NULL,
	`kind` text NOT NULL,
	`period` text NOT NULL,
	`status` text NOT NULL,
	`files` text NOT NULL,
	`row_count` integer DEFAULT 0 NOT NULL,
	`bytes` integer DEFAULT 0 NOT NULL,
	`source_fingerprint` text,
	`cursor` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`error` text,
	`started_at` integer NOT NULL,
	`finished_at` integer,
	PRIMARY KEY(`workspace_id`, `kind`, `period`)
);
--> statement-breakpoint
CREATE INDEX `warehouse_exports_kind_period` ON `warehouse_exports` (`kind`,`period`);