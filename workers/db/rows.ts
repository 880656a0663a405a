/**
 * Rows of D1 tables as raw SQL returns them (snake_case columns, JSON as
 * text), for the paths that query D1 without Drizzle: the Profile API's
 * session reads and the warehouse export's pages. Mirrors `profiles` in schema.ts.
 */
export interface ProfilesTableRow {
  workspace_id: string;
  profile_id: string;
  canonical_id: string | null;
  user_id: string | null;
  email: string | null;
  phone: string | null;
  first_name: string | null;
  last_name: string | null;
  traits: string;
  trait_meta: string;
  computed_traits: string;
  segments: string;
  consent: string;
  created_at: number;
  first_seen_at: number | null;
  last_seen_at: number | null;
  updated_at: number;
  last_source_id: string | null;
  last_message_id: string | null;
  version: number;
}
