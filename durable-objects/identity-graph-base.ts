import { DurableObject } from "cloudflare:workers";
import type { IdentityGraph } from "../workers/identity/graph";
import { traitValues } from "../workers/profiles/traits";
import type { ActivationEnvelope } from "../workers/segments/activation";
import { AudienceEngine } from "./audience-engine";
import { GraphChanges } from "./graph-changes";
import { GraphStore } from "./graph-store";
import { HandoverLedger } from "./handover-ledger";
import type { HandoverParts } from "./handover-operations";
import { IndexBackfill } from "./index-backfill";
import { ObjectMeta } from "./object-meta";
import { PendingMatchLeads } from "./pending-match-leads";
import { ProfileStore } from "./profile-store";
import { ProfileWriter, shardOf } from "./profile-writer";

/**
 * The state of an identity graph object (`IdentityGraphShard`, identity-graph.ts)
 * and nothing else: its stores over the object's SQLite storage, built once in
 * the constructor. No RPC methods live here; the classes that extend it add them
 * a group at a time (identity-graph-handover-rpc.ts, identity-graph-audience-rpc.ts,
 * identity-graph-reads.ts, then identity-graph.ts), and Workers RPC exposes the
 * public methods of every class in that chain on the object's stub.
 */
export abstract class IdentityGraphBase extends DurableObject<Env> {
  protected readonly sql: SqlStorage;
  protected readonly graphs: GraphStore;
  protected readonly store: ProfileStore;
  protected readonly writer: ProfileWriter;
  protected readonly audiences: AudienceEngine;
  protected readonly changes: GraphChanges;
  protected readonly ledger: HandoverLedger;
  protected readonly backfill: IndexBackfill;
  protected readonly handovers: HandoverParts;
  protected readonly leads: PendingMatchLeads;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    // Known from the name before any call: a shard must tag the ids it issues (moves included) from its very first one.
    this.graphs = new GraphStore(ctx.storage, shardOf(ctx.id.name));
    this.store = new ProfileStore(this.sql);
    this.audiences = new AudienceEngine(this.sql, (id) => traitValues(this.store.traits(id)), (change) => this.store.recordEmission(change));
    this.ledger = new HandoverLedger(this.sql);
    this.backfill = new IndexBackfill(this.sql);
    this.leads = new PendingMatchLeads(this.sql);
    this.changes = new GraphChanges(this.graphs, this.store, this.audiences, this.ledger, this.leads);
    this.handovers = { sql: this.sql, graphs: this.graphs, store: this.store, audiences: this.audiences, ledger: this.ledger, meta: new ObjectMeta(this.sql), leads: this.leads };
    this.writer = new ProfileWriter({ ctx, db: env.DB, activations: env.ACTIVATION_QUEUE as Queue<ActivationEnvelope>, store: this.store, audiences: this.audiences, graph: () => this.load() });
  }

  protected load(): IdentityGraph {
    return this.graphs.graph();
  }
}
