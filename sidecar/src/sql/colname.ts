/**
 * Output column names: PostgreSQL's FigureColname (src/backend/parser/parse_target.c) over the raw
 * parse tree, for select-list items without an alias.
 */
import { type A_Expr, type A_Indirection, type FuncCall, type ResTarget, type SelectStmt, type SubLink, type TypeCast, list, names, nodeOf, stringValue, unwrap } from './ast.js';

/** The single name of an unqualified column reference, if `node` is one. */
export function bareName(node: unknown): string | undefined {
  const cr = nodeOf<{ fields?: unknown[] }>(node, 'ColumnRef');
  if (cr === undefined) return undefined;
  const fields = list(cr.fields);
  return fields.length === 1 ? stringValue(fields[0]) : undefined;
}

/**
 * The column name PostgreSQL gives an unnamed select-list item (FigureColname in parse_target.c).
 * Returns the name and its strength: 2 for a real name, 1 for a weak one (`case`, `array`, `row`)
 * a cast may override, 0 for `?column?`.
 */
function figure(node: unknown): [string, number] {
  const u = unwrap(node);
  if (u === undefined) return ['?column?', 0];
  const f = u.fields;
  switch (u.tag) {
    case 'ColumnRef': {
      const fields = list(f.fields);
      const last = stringValue(fields[fields.length - 1]);
      return last === undefined ? ['?column?', 0] : [last, 2];
    }
    case 'A_Indirection': {
      const steps = list((f as A_Indirection).indirection);
      for (let i = steps.length - 1; i >= 0; i--) {
        const s = stringValue(steps[i]);
        if (s !== undefined) return [s, 2];
      }
      return figure((f as A_Indirection).arg);
    }
    case 'FuncCall': {
      const parts = names((f as FuncCall).funcname);
      return [parts[parts.length - 1] ?? '?column?', 2];
    }
    case 'A_Expr':
      return (f as A_Expr).kind === 'AEXPR_NULLIF' ? ['nullif', 2] : ['?column?', 0];
    case 'TypeCast': {
      const inner = figure((f as TypeCast).arg);
      if (inner[1] > 1) return inner;
      const type = names((f as TypeCast).typeName?.names);
      return [type[type.length - 1] ?? inner[0], 1];
    }
    case 'CollateClause':
      return figure(f.arg);
    case 'GroupingFunc':
      return ['grouping', 2];
    case 'SubLink': {
      const s = f as SubLink;
      if (s.subLinkType === 'EXISTS_SUBLINK') return ['exists', 2];
      if (s.subLinkType === 'ARRAY_SUBLINK') return ['array', 2];
      if (s.subLinkType === 'EXPR_SUBLINK') {
        let sel = nodeOf<SelectStmt>(s.subselect, 'SelectStmt');
        while (sel !== undefined && sel.op !== undefined && sel.op !== 'SETOP_NONE') sel = sel.larg;
        const rt = nodeOf<ResTarget>(list(sel?.targetList)[0], 'ResTarget');
        if (rt?.name !== undefined) return [rt.name, 2];
        if (rt !== undefined) {
          const inner = figure(rt.val);
          if (inner[1] > 0) return [inner[0], 2];
        }
      }
      return ['?column?', 0];
    }
    case 'CaseExpr':
      return ['case', 1];
    case 'A_ArrayExpr':
      return ['array', 1];
    case 'RowExpr':
      return ['row', 1];
    case 'CoalesceExpr':
      return ['coalesce', 2];
    case 'MinMaxExpr':
      return [f.op === 'IS_LEAST' ? 'least' : 'greatest', 2];
    case 'SQLValueFunction':
      return [String(f.op ?? '').replace(/^SVFOP_/, '').replace(/_N$/, '').toLowerCase(), 2];
    case 'XmlExpr':
      return f.op === 'IS_DOCUMENT' ? ['?column?', 0] : [String(f.op ?? '').replace(/^IS_/, '').toLowerCase(), 2];
    case 'XmlSerialize':
      return ['xmlserialize', 2];
    case 'JsonObjectConstructor':
      return ['json_object', 2];
    case 'JsonArrayConstructor':
    case 'JsonArrayQueryConstructor':
      return ['json_array', 2];
    case 'JsonObjectAgg':
      return ['json_objectagg', 2];
    case 'JsonArrayAgg':
      return ['json_arrayagg', 2];
    case 'JsonParseExpr':
      return ['json', 2];
    case 'JsonScalarExpr':
      return ['json_scalar', 2];
    case 'JsonSerializeExpr':
      return ['json_serialize', 2];
    case 'JsonFuncExpr':
      return [String(f.op ?? '').replace(/_OP$/, '').toLowerCase(), 2];
    case 'MergeSupportFunc':
      return ['merge_action', 2];
    default:
      return ['?column?', 0];
  }
}

/** The output name of an unnamed select-list item. */
export function figureColname(node: unknown): string {
  return figure(node)[0];
}
