// The planner: writes (dual-write rewrites, refusals), and assembling the text variants of a
// plan. Reads are classified in read_planner.cpp.
#include "router/planner.h"

#include "router/planner_internal.h"

namespace pgphase::router {
namespace detail {

int Planner::count_writes(const ProtobufCMessage* root, int16_t* route) const {
  int n = 0;
  walk(root, [&](const ProtobufCMessage& m) {
    const PgQuery__RangeVar* rel = nullptr;
    if (is(m, pg_query__insert_stmt__descriptor)) {
      rel = reinterpret_cast<const PgQuery__InsertStmt&>(m).relation;
    } else if (is(m, pg_query__update_stmt__descriptor)) {
      rel = reinterpret_cast<const PgQuery__UpdateStmt&>(m).relation;
    } else if (is(m, pg_query__delete_stmt__descriptor)) {
      rel = reinterpret_cast<const PgQuery__DeleteStmt&>(m).relation;
    } else if (is(m, pg_query__merge_stmt__descriptor)) {
      rel = reinterpret_cast<const PgQuery__MergeStmt&>(m).relation;
    } else if (is(m, pg_query__copy_stmt__descriptor)) {
      const auto& c = reinterpret_cast<const PgQuery__CopyStmt&>(m);
      if (c.is_from) rel = c.relation;
    }
    if (rel != nullptr && route_of(rel, route) != nullptr) ++n;
    return true;
  });
  return n;
}

Outcome Planner::unsupported(int16_t route, std::string reason) const {
  Outcome o;
  o.kind = Outcome::kRefuse;
  o.route = route;
  o.reason = std::move(reason);
  return o;
}

Outcome Planner::classify(const PgQuery__RawStmt& raw, Tokens& t) {
  const PgQuery__Node* node = raw.stmt;
  if (node == nullptr) return {};
  int16_t route = -1;
  const auto* msg = reinterpret_cast<const ProtobufCMessage*>(node);
  switch (node->node_case) {
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_DELETE_STMT: {
      const PgQuery__RangeVar* rel =
          node->node_case == PG_QUERY__NODE__NODE_INSERT_STMT   ? node->insert_stmt->relation
          : node->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ? node->update_stmt->relation
                                                                : node->delete_stmt->relation;
      const int writes = count_writes(msg, &route);
      if (writes == 0) return classify_read(*node, t);  // another table's write: its reads
      if (route_of(rel, nullptr) == nullptr || writes > 1) {
        return unsupported(route, "a data-modifying WITH query writes to a migrating table");
      }
      route_of(rel, &route);
      const ProtobufCMessage* inner =
          node->node_case == PG_QUERY__NODE__NODE_INSERT_STMT
              ? reinterpret_cast<const ProtobufCMessage*>(node->insert_stmt)
          : node->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT
              ? reinterpret_cast<const ProtobufCMessage*>(node->update_stmt)
              : reinterpret_cast<const ProtobufCMessage*>(node->delete_stmt);
      return rewrite_dml(*inner, route, t);
    }
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT: {
      for (size_t i = 0; i < node->truncate_stmt->n_relations; ++i) {
        const PgQuery__Node* r = node->truncate_stmt->relations[i];
        if (r->node_case == PG_QUERY__NODE__NODE_RANGE_VAR && route_of(r->range_var, &route))
          return rewrite_truncate(*node->truncate_stmt, t);
      }
      return {};
    }
    case PG_QUERY__NODE__NODE_CREATE_STMT:
      note_created(node->create_stmt->relation);
      break;
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
      if (node->create_table_as_stmt->into != nullptr)
        note_created(node->create_table_as_stmt->into->rel);
      break;
    case PG_QUERY__NODE__NODE_VIEW_STMT:
      note_created(node->view_stmt->view);
      break;
    case PG_QUERY__NODE__NODE_SELECT_STMT:
      if (node->select_stmt->into_clause != nullptr)
        note_created(node->select_stmt->into_clause->rel);
      break;
    case PG_QUERY__NODE__NODE_CREATE_FOREIGN_TABLE_STMT:
      if (node->create_foreign_table_stmt->base_stmt != nullptr)
        note_created(node->create_foreign_table_stmt->base_stmt->relation);
      break;
    case PG_QUERY__NODE__NODE_RENAME_STMT:
      if (route_of(node->rename_stmt->relation, &route))
        return unsupported(route, "renaming a migrating table or its columns");
      break;
    case PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT:
      note_created(node->alter_object_schema_stmt->relation);
      break;
    case PG_QUERY__NODE__NODE_COPY_STMT:
      if (node->copy_stmt->is_from && route_of(node->copy_stmt->relation, &route))
        return unsupported(route, "COPY FROM into a migrating table cannot be mirrored");
      break;
    case PG_QUERY__NODE__NODE_MERGE_STMT:
      if (route_of(node->merge_stmt->relation, &route))
        return unsupported(route, "MERGE into a migrating table cannot be mirrored");
      break;
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
      if (route_of(node->alter_table_stmt->relation, &route))
        return unsupported(route, "ALTER of a migrating table");
      break;
    case PG_QUERY__NODE__NODE_DROP_STMT: {
      const PgQuery__DropStmt& d = *node->drop_stmt;
      if (d.remove_type != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) break;
      for (size_t i = 0; i < d.n_objects; ++i) {
        const PgQuery__Node* o = d.objects[i];
        if (o->node_case != PG_QUERY__NODE__NODE_LIST) continue;
        const PgQuery__List& l = *o->list;
        TableName n;
        if (l.n_items == 1 && l.items[0]->node_case == PG_QUERY__NODE__NODE_STRING) {
          n.table = l.items[0]->string->sval;
        } else if (l.n_items == 2) {
          n.schema = l.items[0]->string->sval;
          n.table = l.items[1]->string->sval;
        }
        if (const MigrationRoute* r = table_.find_source(n); r != nullptr) {
          route = static_cast<int16_t>(r - table_.routes().data());
          return unsupported(route, "DROP of a migrating table");
        }
      }
      break;
    }
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT: {
      bool analyze = false;
      for (size_t i = 0; i < node->explain_stmt->n_options; ++i) {
        const PgQuery__Node* o = node->explain_stmt->options[i];
        if (o->node_case == PG_QUERY__NODE__NODE_DEF_ELEM &&
            std::string_view(o->def_elem->defname) == "analyze")
          analyze = true;
      }
      if (analyze && count_writes(msg, &route) > 0)
        return unsupported(route, "EXPLAIN ANALYZE of a write to a migrating table");
      return {};
    }
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
      if (count_writes(msg, &route) > 0)
        return unsupported(route,
                           "SQL-level PREPARE of a write to a migrating table (use the extended "
                           "protocol's Parse, which pgphase rewrites)");
      return {};
    default:
      break;
  }
  if (count_writes(msg, &route) > 0)
    return unsupported(route,
                       "a data-modifying statement nested in this one writes to a "
                       "migrating table");
  return classify_read(*node, t);
}

Outcome Planner::rewrite_truncate(const PgQuery__TruncateStmt& s, Tokens& t) {
  // TRUNCATE a, b [RESTART IDENTITY] [CASCADE]: the mirrored tables join the list, so both sides
  // empty in the same statement (and roll back together).
  std::vector<std::string> extra;
  std::vector<Rename> renames;
  int16_t first_route = -1;
  for (size_t i = 0; i < s.n_relations; ++i) {
    const PgQuery__Node* r = s.relations[i];
    if (r->node_case != PG_QUERY__NODE__NODE_RANGE_VAR) continue;
    int16_t idx = -1;
    const MigrationRoute* route = route_of(r->range_var, &idx);
    if (route == nullptr) continue;
    if (first_route < 0) first_route = idx;
    if (route->mode == WriteMode::kTargetOnly) {
      // completed: the name stands for the target.
      if (name_uncertain(*r->range_var, *route))
        return unsupported(idx, uncertain_reason(*route, "in a TRUNCATE"));
      const size_t at = t.at_offset(r->range_var->location);
      if (at == kNone) return unsupported(idx, "pgphase could not locate the table name");
      renames.push_back({at, t.name_end(at), quote_table(route->target)});
      continue;
    }
    if (!route->problem.empty()) return unsupported(idx, route->problem);
    if (name_uncertain(*r->range_var, *route))
      return unsupported(idx, uncertain_reason(*route, "in a TRUNCATE"));
    extra.push_back(quote_table(route->target));
  }
  size_t at = t.last;
  for (int32_t k : {PG_QUERY__TOKEN__RESTART, PG_QUERY__TOKEN__CONTINUE_P, PG_QUERY__TOKEN__CASCADE,
                    PG_QUERY__TOKEN__RESTRICT}) {
    at = std::min(at, std::min(t.last, t.find0(t.first, k)));
  }
  Outcome o;
  o.kind = Outcome::kRewrite;
  o.route = first_route;
  o.text = renamed_text(t, t.first, at, renames, &o.fragments);
  for (const auto& e : extra) o.text += ", " + e;
  if (at < t.last) {
    std::vector<TextFragment> tail;
    const std::string rest = renamed_text(t, at, t.last, renames, &tail);
    const size_t base = o.text.size() + 1;
    o.text += " " + rest;
    for (const TextFragment& f : tail) o.fragments.push_back({base + f.at, f.from, f.length});
  }
  return o;
}

Outcome Planner::rewrite_dml(const ProtobufCMessage& stmt, int16_t route_index, Tokens& t) {
  const MigrationRoute& r = table_.routes()[static_cast<size_t>(route_index)];
  if (!r.problem.empty()) return unsupported(route_index, r.problem);
  const bool renamed = r.mode == WriteMode::kMirrorSource || r.mode == WriteMode::kTargetOnly;
  if (renamed && !r.identity_map) {
    return unsupported(route_index,
                       "column_map renames or drops columns, so a statement naming the source in "
                       "the " +
                           std::string(migration::to_string(r.phase)) +
                           " phase cannot be redirected to " + quote_table(r.target) +
                           " (write the target with its own column names)");
  }
  // cleanup: the statement writes the target and the source is the mirror.
  const TableName& mirror = r.mode == WriteMode::kMirrorSource ? r.source : r.target;
  const PgQuery__RangeVar* rel = nullptr;
  const PgQuery__WithClause* with = nullptr;
  size_t n_returning = 0;
  int32_t main_kind = 0;
  TagKind tag = TagKind::kInsert;
  bool key_update = false;
  if (is(stmt, pg_query__insert_stmt__descriptor)) {
    const auto& s = reinterpret_cast<const PgQuery__InsertStmt&>(stmt);
    rel = s.relation;
    with = s.with_clause;
    n_returning = s.n_returning_list;
    main_kind = PG_QUERY__TOKEN__INSERT;
    if (s.on_conflict_clause != nullptr) {
      for (size_t i = 0; i < s.on_conflict_clause->n_target_list; ++i) {
        const PgQuery__Node* n = s.on_conflict_clause->target_list[i];
        if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET) continue;
        for (const auto& k : r.key)
          if (k.from == n->res_target->name)
            return unsupported(route_index, "ON CONFLICT DO UPDATE that changes key column " +
                                                k.from + " cannot be mirrored");
      }
    }
  } else if (is(stmt, pg_query__update_stmt__descriptor)) {
    const auto& s = reinterpret_cast<const PgQuery__UpdateStmt&>(stmt);
    rel = s.relation;
    with = s.with_clause;
    n_returning = s.n_returning_list;
    main_kind = PG_QUERY__TOKEN__UPDATE;
    tag = TagKind::kUpdate;
    if (s.where_clause != nullptr &&
        s.where_clause->node_case == PG_QUERY__NODE__NODE_CURRENT_OF_EXPR)
      return unsupported(route_index, "UPDATE ... WHERE CURRENT OF a cursor cannot be mirrored");
    for (size_t i = 0; i < s.n_target_list; ++i) {
      const PgQuery__Node* n = s.target_list[i];
      if (n->node_case != PG_QUERY__NODE__NODE_RES_TARGET) continue;
      for (const auto& k : r.key) key_update = key_update || k.from == n->res_target->name;
    }
  } else {
    const auto& s = reinterpret_cast<const PgQuery__DeleteStmt&>(stmt);
    rel = s.relation;
    with = s.with_clause;
    n_returning = s.n_returning_list;
    main_kind = PG_QUERY__TOKEN__DELETE_P;
    tag = TagKind::kDelete;
    if (s.where_clause != nullptr &&
        s.where_clause->node_case == PG_QUERY__NODE__NODE_CURRENT_OF_EXPR)
      return unsupported(route_index, "DELETE ... WHERE CURRENT OF a cursor cannot be mirrored");
  }

  const size_t kw = with != nullptr ? t.main_keyword(main_kind) : t.first;
  const size_t rel_tok = t.at_offset(rel->location);
  if (kw == kNone || rel_tok == kNone || t.all[kw].kind != main_kind) {
    return unsupported(route_index, "pgphase could not locate the parts of this statement");
  }
  const size_t ret = t.find0(kw, PG_QUERY__TOKEN__RETURNING);
  const std::string ref =
      (rel->alias != nullptr && rel->alias->aliasname != nullptr && *rel->alias->aliasname != '\0')
          ? quote_ident(rel->alias->aliasname)
          : quote_ident(rel->relname);
  const bool is_delete = tag == TagKind::kDelete;
  const bool eventual = r.consistency == migration::ConsistencyLevel::kEventual;
  // What the client's name resolves to is certain when it is schema-qualified, or when no other
  // schema has a relation of that name (then the only risk is a homonym created since the
  // shapes were read: a guard below keeps the mirror from applying to it).
  const bool qualified = rel->schemaname != nullptr && *rel->schemaname != '\0';
  if (!qualified && shared_name(*rel)) {
    return unsupported(route_index, uncertain_reason(r, "is shared by another migration's source"));
  }
  const bool certain = qualified || !name_uncertain(*rel, r);
  if (!certain && renamed) {
    return unsupported(route_index,
                       uncertain_reason(r, "cannot be redirected to " + quote_table(r.target)));
  }
  // A BEFORE UPDATE trigger may change the key of any UPDATE.
  if (tag == TagKind::kUpdate && r.update_trigger) key_update = true;
  // Typed row images through t_sys_mirror_rows (exact for every type, independent of the
  // session's settings and of what the name resolves to), or the inline upsert. Also typed:
  // - UPDATEs that may move keys: the function deletes the moved-away keys before it inserts the
  //   new ones, so another unique index of the mirrored table never sees both rows at once (the
  //   inline form's sibling DELETE and INSERT run in no guaranteed order);
  // - tables so wide that the inline image (one column per table column) next to RETURNING *
  //   would pass PostgreSQL's 1664-entry target list limit (54011); the typed image is one column.
  constexpr size_t kWideTable = 800;
  const bool typed = eventual || is_delete || !certain || key_update ||
                     (n_returning > 0 && r.columns.size() > kWideTable);
  const TableName& written = r.mode == WriteMode::kMirrorSource ? r.target : r.source;
  // cleanup: the statement names the target by pgphase's qualified name.
  const TableName used = renamed     ? written
                         : qualified ? TableName{rel->schemaname, rel->relname}
                                     : TableName{"", rel->relname != nullptr ? rel->relname : ""};
  // Inline form with an unqualified name: mirror only what the name resolved to.
  const std::string guard =
      used.schema.empty() ? "(SELECT " + resolve_call(used) + " = " + resolve_call(written) + ")"
                          : std::string();

  Outcome o;
  std::string out;
  // cleanup and completed: the relation's name becomes the target's, aliased to the name the
  // statement uses, so every reference to it (users.col, RETURNING users.*) still resolves.
  const size_t rel_end = t.name_end(rel_tok);
  const bool has_alias =
      rel->alias != nullptr && rel->alias->aliasname != nullptr && *rel->alias->aliasname != '\0';
  const std::string rename =
      quote_table(r.target) + (has_alias ? std::string() : " AS " + quote_ident(rel->relname));
  auto copy_tokens = [&](size_t from_tok, size_t to_tok, size_t skip) {
    const std::string_view part = t.text(from_tok, to_tok).substr(skip);
    if (part.empty()) return;
    o.fragments.push_back(
        {out.size(), static_cast<size_t>(part.data() - t.sql.data()), part.size()});
    out += part;
  };
  // The rename, and what keeps the source's shape when the target's differs (an explicit
  // column list for a positional INSERT, RETURNING's stars expanded, widened columns cast).
  std::vector<Rename> edits;
  if (renamed) {
    edits.push_back({rel_tok, rel_end, rename});
    if (std::string why = reshape_write(stmt, r, t, rel_tok, edits); !why.empty())
      return unsupported(route_index, why);
    std::stable_sort(edits.begin(), edits.end(),
                     [](const Rename& a, const Rename& b) { return a.from < b.from; });
  }
  auto append = [&](size_t from_tok, size_t to_tok, size_t skip = 0) {
    size_t i = from_tok;
    for (const Rename& e : edits) {
      if (e.from < i || e.from >= to_tok) continue;
      copy_tokens(i, e.from, i == from_tok ? skip : 0);
      out += " " + e.text + " ";
      i = e.to;
    }
    copy_tokens(i, to_tok, i == from_tok ? skip : 0);
  };
  if (r.mode == WriteMode::kTargetOnly) {
    // Other references to completed migrations' sources (INSERT INTO users SELECT ... FROM users,
    // UPDATE ... FROM users): their names stand for the targets too.
    const size_t before = edits.size();
    if (Outcome why = read_refs(&stmt, 0, t, rel, &edits); why.kind != Outcome::kPass) return why;
    if (edits.size() != before) {
      std::stable_sort(edits.begin(), edits.end(),
                       [](const Rename& a, const Rename& b) { return a.from < b.from; });
    }
    append(t.first, t.last);
    o.kind = Outcome::kRewrite;
    o.route = route_index;
    o.text = std::move(out);
    return o;
  }
  out = "WITH";
  if (with != nullptr) {
    append(t.first, kw, 4);  // the client's CTEs (after "WITH"), RECURSIVE kept
    out += ",";
  }
  out += " ";
  out += kWriteCte;
  out += " AS (";
  append(kw, ret == kNone ? t.last : ret);
  out += " RETURNING ";
  if (ret != kNone && n_returning > 0) {
    append(ret + 1, t.last);
    out += ", ";
  }
  const std::vector<ColumnPair>& image = is_delete ? r.key : r.columns;
  out += typed ? row_image(ref) : image_list(ref, image, true);
  out += ")";
  if (key_update) {
    // The rows this UPDATE changes as they were, read under the same snapshot with the same
    // FROM and WHERE; mirrored rows whose key moved away are deleted. (A row that a concurrent
    // transaction changes so that it no longer matches is skipped by the UPDATE but still listed
    // here: see the README's limitations.)
    const size_t set_tok = t.find0(rel_tok, PG_QUERY__TOKEN__SET);
    const size_t from_tok = set_tok == kNone ? kNone : t.find0(set_tok, PG_QUERY__TOKEN__FROM);
    const size_t where_tok = t.find0(rel_tok, PG_QUERY__TOKEN__WHERE);
    const size_t end_tok = ret == kNone ? t.last : ret;
    if (set_tok == kNone) return unsupported(route_index, "could not locate SET");
    out += ", ";
    out += kOldCte;
    out += " AS (SELECT ";
    out += row_image(ref);  // key_update implies typed
    out += " FROM ";
    append(kw + 1, set_tok);
    if (from_tok != kNone && from_tok < end_tok) {
      out += ", ";
      append(from_tok + 1, where_tok != kNone && where_tok < end_tok ? where_tok : end_tok);
    }
    if (where_tok != kNone && where_tok < end_tok) {
      out += " ";
      append(where_tok, end_tok);
    }
    out += ")";
  }
  if (typed) {
    // Strict: errors fail the statement; the DELETE takes its own snapshot in the function, so
    // a row a backfill committed while this statement waited for its lock is seen. Eventual:
    // applied in a subtransaction, failures logged to t_sys_dual_write_logs.
    static constexpr const char* kOp[] = {"insert", "update", "delete"};
    MirrorCall call;
    call.migration_id = eventual ? std::string_view(r.migration_id) : std::string_view();
    call.operation = kOp[static_cast<int>(tag)];
    call.used = &used;
    call.written = &written;
    call.mirror = &mirror;
    call.columns = &r.columns;
    call.key = &r.key;
    call.is_delete = is_delete;
    call.old = key_update;
    out += ", \"__pgphase_m\" AS MATERIALIZED (";
    out += mirror_rows_call(call);
    out += ") SELECT ";
  } else {
    out += ", \"__pgphase_m\" AS (";
    out += mirror_upsert(mirror, r.columns, r.key, guard);
    out += ") SELECT ";
  }
  o.kind = Outcome::kRewrite;
  o.route = route_index;
  o.transform.tag = tag;
  o.transform.route = route_index;
  if (n_returning > 0) {
    out += typed ? std::string(kWriteCte) + ".* FROM " : std::string("* FROM ");
    o.transform.kind = ResultTransform::Kind::kStripColumns;
    o.transform.strip = static_cast<uint16_t>(typed ? 1 : image.size());
  } else {
    out += "count(*) FROM ";
    o.transform.kind = ResultTransform::Kind::kCountToTag;
  }
  out += kWriteCte;
  if (typed) out += ", \"__pgphase_m\"";  // referenced, so that it runs
  o.text = std::move(out);
  return o;
}

QueryPlan Planner::refuse_unparsed() {
  QueryPlan plan;
  if (context_.is_default() || lexing_uncertain_from() == kNone) return plan;
  // libpg_query's reading fails where the server's may not: a write must not pass unmirrored.
  const int16_t route = may_write(sql_);
  if (route < 0) return plan;
  std::vector<Piece> pieces{{0, sql_.size(), unsupported(route, lexing_reason())}};
  return assemble_plan(pieces);
}

int16_t Planner::may_write(std::string_view text) const {
  static constexpr std::string_view kWrites[] = {"insert", "update", "delete",
                                                 "merge",  "copy",   "truncate"};
  bool writes = false;
  for (std::string_view w : kWrites) writes = writes || contains_ci(text, w);
  if (!writes) return -1;
  int16_t route = 0;
  for (const auto& r : table_.routes()) {
    std::string lower;
    for (char c : r.source.table) lower.push_back(static_cast<char>(std::tolower(c)));
    if (contains_ci(text, lower)) return route;
    ++route;
  }
  return -1;
}

size_t Planner::lexing_uncertain_from() {
  const size_t backslash = sql_.find('\\');
  if (backslash == std::string_view::npos) return kNone;  // read the same under any setting
  const std::vector<Token>& all = tokens();
  if (all.empty()) return backslash;  // libpg_query cannot even scan it
  // Up to the first token below, both readings agree. With standard_conforming_strings off, a
  // '...' (or N'...') literal with a backslash ends elsewhere (and the server refuses U&'...').
  // With a client_encoding whose multibyte characters may end in 0x5C, a backslash byte in an
  // E'...' literal or a U& escape may be half of a character, not an escape.
  for (const Token& tk : all) {
    if (tk.kind != PG_QUERY__TOKEN__SCONST && tk.kind != PG_QUERY__TOKEN__USCONST &&
        tk.kind != PG_QUERY__TOKEN__UIDENT)
      continue;
    const std::string_view text =
        sql_.substr(static_cast<size_t>(tk.start), static_cast<size_t>(tk.end - tk.start));
    if (text.find('\\') == std::string_view::npos) continue;
    const bool escapes = tk.kind != PG_QUERY__TOKEN__SCONST || text[0] == 'e' || text[0] == 'E';
    const bool plain = tk.kind == PG_QUERY__TOKEN__SCONST && !escapes && text[0] != '$';
    if ((context_.literals_uncertain && (plain || tk.kind == PG_QUERY__TOKEN__USCONST)) ||
        (context_.backslash_bytes_uncertain && escapes))
      return static_cast<size_t>(tk.start);
  }
  return kNone;
}

std::string Planner::lexing_reason() const {
  return context_.literals_uncertain
             ? "standard_conforming_strings is off (or being changed) and a string literal of "
               "this statement has a backslash: pgphase cannot be sure where PostgreSQL ends it, "
               "so it does not rewrite the statement (write such literals as E'...')"
             : "the session's client_encoding can hide a backslash byte inside a multibyte "
               "character: pgphase cannot be sure how PostgreSQL reads this statement's "
               "literals, so it does not rewrite the statement (use client_encoding UTF8)";
}

void Planner::guard_lexing(std::vector<Piece>& pieces) {
  if (context_.is_default() || pieces.empty()) return;
  if (!context_.literals_uncertain && !context_.backslash_bytes_uncertain) return;
  const size_t from = lexing_uncertain_from();
  if (from == kNone) return;
  size_t k = 0;
  while (k < pieces.size() && pieces[k].end <= from) ++k;
  if (k == pieces.size()) return;
  const std::string why = lexing_reason();
  // The server may read a write where libpg_query reads a literal (and the reverse): any word
  // of a write next to a migrating table's name from there on counts.
  int16_t write_route = may_write(sql_.substr(pieces[k].begin));
  for (size_t j = k; j < pieces.size() && write_route < 0; ++j) {
    const Outcome& o = pieces[j].outcome;
    if (o.kind == Outcome::kRewrite || o.kind == Outcome::kRefuse) write_route = o.route;
  }
  if (write_route >= 0) {
    // From the first statement read differently on: one refusal (the server runs what precedes
    // it as the client meant, then fails the rest as an error would).
    pieces[k].outcome = unsupported(write_route, why);
    pieces[k].end = sql_.size();
    pieces.resize(k + 1);
    return;
  }
  for (size_t j = k; j < pieces.size(); ++j) {
    Outcome& o = pieces[j].outcome;
    if (o.kind != Outcome::kRead) continue;
    if (table_.routes()[static_cast<size_t>(o.route)].phase == migration::Phase::kCompleted) {
      o = refuse_stale_read(o.route, why);  // the source is no longer written
      continue;
    }
    o.kind = Outcome::kPass;  // the client's text, unchanged, to the source
    o.unroutable = o.route;
    o.reason = why;
  }
}

QueryPlan Planner::run() {
  if (!table_.may_touch(sql_)) return {};
  const std::unique_ptr<ParseTree> tree = ParseTree::parse(sql_);
  if (tree == nullptr) return refuse_unparsed();  // else a syntax error the server reports
  if (texts_ != nullptr) texts_->parsed = true;
  const PgQuery__ParseResult& pr = tree->result();
  std::vector<Piece> pieces;
  for (size_t i = 0; i < pr.n_stmts; ++i) {
    const PgQuery__RawStmt& raw = *pr.stmts[i];
    const size_t lo = static_cast<size_t>(raw.stmt_location);
    const size_t hi = raw.stmt_len == 0 ? sql_.size() : lo + static_cast<size_t>(raw.stmt_len);
    Piece p{lo, hi, {}};
    // Cheap first: a statement that cannot name a migrating table is not analysed.
    if (table_.may_touch(sql_.substr(lo, hi - lo))) {
      const std::vector<Token>& all = tokens();
      Tokens t{sql_, all};
      t.first = all.size();
      for (size_t k = 0; k < all.size(); ++k) {
        if (static_cast<size_t>(all[k].start) >= lo && static_cast<size_t>(all[k].end) <= hi) {
          t.first = std::min(t.first, k);
          t.last = k + 1;
        }
      }
      if (t.first < t.last) {
        // The statement's own text: from its first token to its last (comments and the
        // separating semicolon stay where they are).
        p.begin = static_cast<size_t>(all[t.first].start);
        p.end = static_cast<size_t>(all[t.last - 1].end);
        p.outcome = classify(raw, t);
      }
    }
    pieces.push_back(std::move(p));
  }
  guard_lexing(pieces);
  QueryPlan plan = assemble_plan(pieces);
  if (texts_ != nullptr && tokens_) {
    texts_->tokens = std::move(*tokens_);
    texts_->scanned = true;
  }
  return plan;
}

QueryPlan Planner::assemble_plan(std::vector<Piece>& pieces) {
  QueryPlan plan;
  plan.shadows_source = shadows_;
  bool any_rewrite = false;
  for (Piece& p : pieces) {
    ResultTransform tr = p.outcome.transform;
    if (p.outcome.kind == Outcome::kRefuse) {
      const MigrationRoute* route =
          p.outcome.route >= 0 ? &table_.routes()[static_cast<size_t>(p.outcome.route)] : nullptr;
      const std::string id = route != nullptr ? route->migration_id : std::string("?");
      if (route != nullptr &&
          route->unsupported_policy == migration::UnsupportedWritePolicy::kAllowAndFlag) {
        plan.flagged.push_back(p.outcome.reason);
        plan.flagged_routes.push_back(p.outcome.route);
        p.outcome.kind = Outcome::kPass;
      } else {
        p.outcome.text = refusal_statement(
            "pgphase: migration " + id + ": " + p.outcome.reason,
            "pgphase cannot mirror this write to the migration's other table; see "
            "unsupported_write_policy");
        tr = {};
        tr.refused = true;
        tr.route = p.outcome.route;
        any_rewrite = true;
      }
    } else if (p.outcome.kind == Outcome::kRewrite) {
      any_rewrite = true;
    } else if (p.outcome.kind == Outcome::kRead) {
      tr.read = true;
      if (plan.read_route < 0) plan.read_route = p.outcome.route;
    }
    if (p.outcome.unroutable >= 0) {
      plan.unroutable_routes.push_back(p.outcome.unroutable);
      plan.unroutable_reasons.push_back(p.outcome.reason);
    }
    plan.statements.push_back(tr);
  }
  if (!any_rewrite && plan.read_route < 0) {
    plan.statements.clear();
    if (!plan.flagged.empty() || !plan.unroutable_routes.empty()) {
      for (const auto& r : table_.routes()) plan.route_ids.push_back(r.migration_id);
    }
    return plan;
  }
  plan.rewritten = any_rewrite;
  for (const auto& r : table_.routes()) plan.route_ids.push_back(r.migration_id);
  // Describes one variant of the text: rewritten writes always, reads to the target when
  // `reads`; rendered for this text here, and for others of its shape by the shape cache.
  auto describe = [&](bool reads, TextTemplate& text) {
    size_t copied = 0;  // bytes of sql_ consumed
    for (const Piece& p : pieces) {
      if (p.outcome.kind == Outcome::kPass) continue;
      if (p.outcome.kind == Outcome::kRead && !reads) continue;
      text.client(copied, p.begin - copied);
      // Inside a rewritten statement, the client's text is split up; an error position maps to
      // the statement's start.
      text.statement_start(p.begin);
      size_t done = 0;  // bytes of p.outcome.text described
      for (const auto& f : p.outcome.fragments) {
        text.own(std::string_view(p.outcome.text).substr(done, f.at - done));
        text.client(f.from, f.length);
        done = f.at + f.length;
      }
      text.own(std::string_view(p.outcome.text).substr(done));
      copied = p.end;
    }
    text.client(copied, sql_.size() - copied);
  };
  PlanTexts local;
  PlanTexts& texts = texts_ != nullptr ? *texts_ : local;
  if (plan.rewritten) {
    describe(false, texts.sql);
    texts.sql.render(sql_, {}, plan.sql, plan.segments);
  }
  if (plan.read_route >= 0) {
    describe(true, texts.sql_target);
    texts.sql_target.render(sql_, {}, plan.sql_target, plan.segments_target);
  }
  return plan;
}

}  // namespace detail

std::optional<uint32_t> QueryPlan::original_position(uint32_t rewritten_1based, bool target) const {
  const std::vector<TextSegment>& segments = target ? segments_target : this->segments;
  if (rewritten_1based == 0) return std::nullopt;
  const uint32_t pos = rewritten_1based - 1;
  const TextSegment* best = nullptr;
  for (const auto& s : segments) {
    if (s.rewritten_start <= pos) best = &s;
  }
  if (best == nullptr) return std::nullopt;
  const uint32_t off = pos - best->rewritten_start;
  if (off < best->length) return best->original_start + off + 1;
  // In text pgphase added: the start of the statement it belongs to.
  for (size_t i = static_cast<size_t>(best - segments.data()) + 1; i-- > 0;) {
    if (segments[i].length == 0) return segments[i].original_start + 1;
  }
  return std::nullopt;
}

QueryPlan plan_query(const RoutingTable& table, std::string_view sql, const PlanContext& context,
                     PlanTexts* texts) {
  return detail::Planner(table, sql, context, texts).run();
}

}  // namespace pgphase::router
