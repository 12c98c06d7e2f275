//! Metric expressions written as text: `revenue`, `yoy(per_mu(tax))`, `cagr(revenue, 5)`,
//! `energy_intensity`.
//!
//! Parsing checks everything that can be checked without data — names, arity, argument kinds,
//! and that shares and totals are taken of quantities that add up — so that a bad metric is
//! refused with the position of its fault before any figure is read.

use std::fmt;
use std::sync::OnceLock;

use crate::catalog::{Direction, Indicator, IndicatorKind};
use crate::entity::ProjectStatus;
use crate::period::{MAX_YEAR, MIN_YEAR};

/// Deepest nesting of function calls accepted; real metrics nest two or three deep, and the
/// limit keeps a hostile expression from exhausting the stack.
pub const MAX_DEPTH: usize = 16;

/// Longest span `cagr(x, n)` accepts, in years: the whole range of supported years.
pub const MAX_CAGR_YEARS: u32 = (MAX_YEAR - MIN_YEAR) as u32;

/// The indicator `per_mu` divides by.
pub const LAND_AREA: &str = "land_area";

/// A function of the expression language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Function {
    /// Year-on-year growth in percent (同比增长).
    Yoy,
    /// Share of the enclosing region's figure in percent (占比).
    Share,
    /// Contribution to the enclosing region's growth in percent (贡献率).
    Contribution,
    /// Per mu of industrial land (亩均).
    PerMu,
    /// One series divided by another.
    Ratio,
    /// One series as a percentage of another.
    Percent,
    /// Compound annual growth over n years in percent.
    Cagr,
    /// Sum over the zones within a region.
    ZonesTotal,
    /// Location quotient (区位熵) of a zone: its share of its region against the zones' share
    /// one level up.
    Lq,
    /// Shift-share differential: the change beyond what growing at the region's rate gives.
    ShiftShare,
    /// Number of projects holding a status over the period (项目个数).
    Projects,
    /// Planned investment of the projects holding a status (计划总投资).
    ProjectInvestment,
    /// Investment completed so far by the projects holding a status (已完成投资).
    ProjectCompletedInvestment,
}

/// What one argument slot of a function takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Param {
    /// An indicator, named metric or function call.
    Series(&'static str),
    /// A positive whole number of years.
    Years(&'static str),
    /// A project status, e.g. `signed` or `under_construction`.
    Status(&'static str),
}

impl Function {
    /// Every function, in the order they are documented.
    pub const ALL: [Function; 13] = [
        Function::Yoy,
        Function::Share,
        Function::Contribution,
        Function::PerMu,
        Function::Ratio,
        Function::Percent,
        Function::Cagr,
        Function::ZonesTotal,
        Function::Lq,
        Function::ShiftShare,
        Function::Projects,
        Function::ProjectInvestment,
        Function::ProjectCompletedInvestment,
    ];

    /// The name written in expressions, e.g. "per_mu".
    pub fn name(self) -> &'static str {
        match self {
            Function::Yoy => "yoy",
            Function::Share => "share",
            Function::Contribution => "contribution",
            Function::PerMu => "per_mu",
            Function::Ratio => "ratio",
            Function::Percent => "percent",
            Function::Cagr => "cagr",
            Function::ZonesTotal => "zones_total",
            Function::Lq => "lq",
            Function::ShiftShare => "shift_share",
            Function::Projects => "projects",
            Function::ProjectInvestment => "project_investment",
            Function::ProjectCompletedInvestment => "project_completed_investment",
        }
    }

    /// The function with this exact (lower-case) name.
    pub fn from_name(name: &str) -> Option<Function> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// How it is called, e.g. "ratio(x, y)".
    pub fn signature(self) -> &'static str {
        match self {
            Function::Yoy => "yoy(x)",
            Function::Share => "share(x)",
            Function::Contribution => "contribution(x)",
            Function::PerMu => "per_mu(x)",
            Function::Ratio => "ratio(x, y)",
            Function::Percent => "percent(x, y)",
            Function::Cagr => "cagr(x, n)",
            Function::ZonesTotal => "zones_total(x)",
            Function::Lq => "lq(x)",
            Function::ShiftShare => "shift_share(x)",
            Function::Projects => "projects(status)",
            Function::ProjectInvestment => "project_investment(status)",
            Function::ProjectCompletedInvestment => "project_completed_investment(status)",
        }
    }

    fn params(self) -> &'static [Param] {
        match self {
            Function::Ratio | Function::Percent => &[Param::Series("x"), Param::Series("y")],
            Function::Cagr => &[Param::Series("x"), Param::Years("n")],
            Function::Projects
            | Function::ProjectInvestment
            | Function::ProjectCompletedInvestment => &[Param::Status("status")],
            _ => &[Param::Series("x")],
        }
    }

    /// Whether the argument must be a quantity that adds up across entities or is divided by
    /// land: a share of a growth rate, or a sum of per-mu figures, means nothing.
    fn needs_additive(self) -> bool {
        matches!(
            self,
            Function::Share
                | Function::Contribution
                | Function::PerMu
                | Function::ZonesTotal
                | Function::Lq
                | Function::ShiftShare
        )
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A built-in metric with a name of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NamedMetric {
    /// 投资强度: fixed-asset investment per mu.
    InvestmentIntensity,
    /// 单位增加值能耗: energy per unit of value added.
    EnergyIntensity,
    /// 单位增加值能耗增速: year-on-year change of energy intensity.
    EnergyIntensityChange,
    /// 全员劳动生产率: value added per employee.
    LaborProductivity,
    /// 研发投入强度: R&D expenditure as a percentage of revenue.
    RdIntensity,
    /// 主导产业占比: leading-industry output as a percentage of output.
    LeadingIndustryShare,
    /// 单位能耗增加值: value added per tonne of standard coal.
    ValueAddedPerEnergy,
}

impl NamedMetric {
    /// Every named metric, in the order they are documented.
    pub const ALL: [NamedMetric; 7] = [
        NamedMetric::InvestmentIntensity,
        NamedMetric::EnergyIntensity,
        NamedMetric::EnergyIntensityChange,
        NamedMetric::LaborProductivity,
        NamedMetric::RdIntensity,
        NamedMetric::LeadingIndustryShare,
        NamedMetric::ValueAddedPerEnergy,
    ];

    /// The name written in expressions, e.g. "energy_intensity".
    pub fn name(self) -> &'static str {
        match self {
            NamedMetric::InvestmentIntensity => "investment_intensity",
            NamedMetric::EnergyIntensity => "energy_intensity",
            NamedMetric::EnergyIntensityChange => "energy_intensity_change",
            NamedMetric::LaborProductivity => "labor_productivity",
            NamedMetric::RdIntensity => "rd_intensity",
            NamedMetric::LeadingIndustryShare => "leading_industry_share",
            NamedMetric::ValueAddedPerEnergy => "value_added_per_energy",
        }
    }

    /// The named metric with this exact name.
    pub fn from_name(name: &str) -> Option<NamedMetric> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Its unit; fixed, because the indicators it reads are built in with canonical units.
    pub fn unit(self) -> &'static str {
        match self {
            NamedMetric::InvestmentIntensity => "万元/亩",
            NamedMetric::EnergyIntensity => "吨标准煤/万元",
            NamedMetric::EnergyIntensityChange
            | NamedMetric::RdIntensity
            | NamedMetric::LeadingIndustryShare => "%",
            NamedMetric::LaborProductivity => "万元/人",
            NamedMetric::ValueAddedPerEnergy => "万元/吨标准煤",
        }
    }

    /// Which way it improves.
    pub fn direction(self) -> Direction {
        match self {
            NamedMetric::EnergyIntensity | NamedMetric::EnergyIntensityChange => {
                Direction::LowerIsBetter
            }
            _ => Direction::HigherIsBetter,
        }
    }

    /// The expression it stands for, built once and shared so that evaluating a named metric
    /// for half a million entities allocates nothing.
    pub fn definition(self) -> &'static Expr {
        static DEFINITIONS: OnceLock<Vec<Expr>> = OnceLock::new();
        let all = DEFINITIONS.get_or_init(|| Self::ALL.iter().map(|m| m.build()).collect());
        let index = Self::ALL
            .iter()
            .position(|m| *m == self)
            .expect("every named metric is listed in ALL");
        &all[index]
    }

    fn build(self) -> Expr {
        let ind = |code: &str| Expr::Indicator(code.to_owned());
        let call = |function, args| Expr::Call { function, args };
        match self {
            NamedMetric::InvestmentIntensity => {
                call(Function::PerMu, vec![ind("fixed_asset_investment")])
            }
            NamedMetric::EnergyIntensity => call(
                Function::Ratio,
                vec![ind("energy_consumption"), ind("value_added")],
            ),
            NamedMetric::EnergyIntensityChange => call(
                Function::Yoy,
                vec![Expr::Named(NamedMetric::EnergyIntensity)],
            ),
            NamedMetric::LaborProductivity => {
                call(Function::Ratio, vec![ind("value_added"), ind("employees")])
            }
            NamedMetric::RdIntensity => call(
                Function::Percent,
                vec![ind("rd_expenditure"), ind("revenue")],
            ),
            NamedMetric::LeadingIndustryShare => call(
                Function::Percent,
                vec![ind("leading_industry_output"), ind("output_value")],
            ),
            NamedMetric::ValueAddedPerEnergy => call(
                Function::Ratio,
                vec![ind("value_added"), ind("energy_consumption")],
            ),
        }
    }
}

impl fmt::Display for NamedMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed metric expression; its `Display` is the normalized spelling.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// An indicator code, e.g. `revenue`.
    Indicator(String),
    /// A number literal; the parser accepts one only as the years of `cagr`.
    Number(f64),
    /// A project status; the parser accepts one only as the argument of the project functions.
    Status(ProjectStatus),
    /// A function applied to its arguments.
    Call {
        /// The function.
        function: Function,
        /// Its arguments, as many and of the kinds its signature says.
        args: Vec<Expr>,
    },
    /// A named metric, evaluated as its [`NamedMetric::definition`].
    Named(NamedMetric),
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Indicator(code) => f.write_str(code),
            // Rust prints 5.0 as "5", so years read back exactly as written.
            Expr::Number(value) => write!(f, "{value}"),
            Expr::Named(metric) => f.write_str(metric.name()),
            Expr::Status(status) => f.write_str(&status.as_str().to_ascii_lowercase()),
            Expr::Call { function, args } => {
                write!(f, "{function}(")?;
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{arg}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// A metric ready to evaluate, with what a table needs to show it.
#[derive(Clone, Debug, PartialEq)]
pub struct Metric {
    /// The normalized spelling, e.g. "yoy(per_mu(tax))".
    pub text: String,
    /// The parsed expression.
    pub expr: Expr,
    /// The unit of its values, e.g. "万元/亩" or "%".
    pub unit: String,
    /// Which way it improves.
    pub direction: Direction,
    /// Whether its value accumulates over the span (a flow, or a zone total of flows), so that
    /// target progress pro-rates it by the elapsed share of the period.
    pub cumulative: bool,
}

/// Why a metric's text could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("at position {position}: {message}")]
pub struct MetricError {
    /// 0-based character index of the fault in the text.
    pub position: usize,
    /// What is wrong, for the user.
    pub message: String,
}

fn error<T>(position: usize, message: impl Into<String>) -> Result<T, MetricError> {
    Err(MetricError {
        position,
        message: message.into(),
    })
}

/// Parses a metric; `lookup` resolves indicator codes against the caller's catalog.
///
/// Catalog indicators are resolved before named metrics, so that adding a named metric later
/// never changes the meaning of an indicator a user has already defined under that code.
pub fn parse_metric(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<Indicator>,
) -> Result<Metric, MetricError> {
    if text.trim().is_empty() {
        return error(
            0,
            "the metric is empty; write an indicator code such as revenue, \
             or an expression such as yoy(revenue)",
        );
    }
    let mut parser = Parser {
        tokens: lex(text),
        next: 0,
        lookup,
    };
    let parsed = parser.series(0)?;
    let end = parser.advance();
    match end.tok {
        Tok::End => {}
        Tok::Close => return error(end.pos, "unmatched \")\""),
        Tok::Bad(c) => return error(end.pos, format!("unexpected character '{c}'")),
        _ => {
            return error(
                end.pos,
                format!(
                    "unexpected {} after the end of the expression",
                    end.tok.describe()
                ),
            );
        }
    }
    Ok(Metric {
        text: parsed.expr.to_string(),
        expr: parsed.expr,
        unit: parsed.unit,
        direction: parsed.direction,
        cumulative: parsed.cumulative,
    })
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Name(String),
    Number(String),
    Open,
    Close,
    Comma,
    /// A character no token starts with; lexing stops there.
    Bad(char),
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Name(name) => format!("\"{name}\""),
            Tok::Number(text) => format!("the number {text}"),
            Tok::Open => "\"(\"".to_owned(),
            Tok::Close => "\")\"".to_owned(),
            Tok::Comma => "\",\"".to_owned(),
            Tok::Bad(c) => format!("the character '{c}'"),
            Tok::End => "the end of the text".to_owned(),
        }
    }
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    /// Character index where it starts.
    pos: usize,
}

/// Splits the text into tokens, ending with `End`; a character that starts no token becomes
/// `Bad` and ends the list, so the parser reports whichever fault comes first in the text.
fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        i += 1;
        let tok = match c {
            c if c.is_whitespace() => continue,
            // Chinese input methods type full-width punctuation; it means the same.
            '(' | '（' => Tok::Open,
            ')' | '）' => Tok::Close,
            ',' | '，' => Tok::Comma,
            c if c.is_ascii_alphabetic() || c == '_' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                Tok::Name(chars[start..i].iter().collect())
            }
            c if c.is_ascii_digit() => {
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                Tok::Number(chars[start..i].iter().collect())
            }
            c => {
                tokens.push(Token {
                    tok: Tok::Bad(c),
                    pos: start,
                });
                return tokens;
            }
        };
        tokens.push(Token { tok, pos: start });
    }
    tokens.push(Token {
        tok: Tok::End,
        pos: chars.len(),
    });
    tokens
}

/// A parsed sub-expression with what its enclosing function needs to know about it.
struct Parsed {
    expr: Expr,
    unit: String,
    direction: Direction,
    cumulative: bool,
    /// Whether it adds up across entities (a flow or stock, or a zone total of one).
    additive: bool,
}

struct Parser<'a> {
    tokens: Vec<Token>,
    next: usize,
    lookup: &'a dyn Fn(&str) -> Option<Indicator>,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // `lex` always ends the list with End or Bad, and neither is ever consumed past.
        &self.tokens[self.next.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if !matches!(token.tok, Tok::End | Tok::Bad(_)) {
            self.next += 1;
        }
        token
    }

    fn series(&mut self, depth: usize) -> Result<Parsed, MetricError> {
        let token = self.advance();
        match token.tok {
            Tok::Name(name) if self.peek().tok == Tok::Open => self.call(&name, token.pos, depth),
            Tok::Name(name) => self.name(&name, token.pos),
            Tok::End => error(token.pos, "expected an indicator, metric or function"),
            Tok::Bad(c) if !c.is_ascii() => error(
                token.pos,
                format!(
                    "expected an indicator, metric or function, found the character '{c}'; \
                     names are English codes such as tax or output_value"
                ),
            ),
            other => error(
                token.pos,
                format!(
                    "expected an indicator, metric or function, found {}",
                    other.describe()
                ),
            ),
        }
    }

    fn name(&self, name: &str, pos: usize) -> Result<Parsed, MetricError> {
        if let Some(indicator) = (self.lookup)(name) {
            return Ok(Parsed {
                expr: Expr::Indicator(indicator.code),
                unit: indicator.unit.symbol.to_owned(),
                direction: indicator.direction,
                cumulative: indicator.kind == IndicatorKind::Flow,
                additive: indicator.kind != IndicatorKind::Rate,
            });
        }
        if let Some(metric) = NamedMetric::from_name(name) {
            return Ok(Parsed {
                expr: Expr::Named(metric),
                unit: metric.unit().to_owned(),
                direction: metric.direction(),
                cumulative: false,
                additive: false,
            });
        }
        if let Some(function) = Function::from_name(name) {
            return error(
                pos,
                format!("{name} is a function; write {}", function.signature()),
            );
        }
        let mut message = format!("unknown indicator or metric \"{name}\"");
        let lower = name.to_ascii_lowercase();
        if lower != name && self.is_known(&lower) {
            message.push_str(&format!("; names are lower-case: \"{lower}\""));
        }
        error(pos, message)
    }

    fn is_known(&self, name: &str) -> bool {
        (self.lookup)(name).is_some()
            || NamedMetric::from_name(name).is_some()
            || Function::from_name(name).is_some()
    }

    fn call(&mut self, name: &str, pos: usize, depth: usize) -> Result<Parsed, MetricError> {
        let Some(function) = Function::from_name(name) else {
            let message = if (self.lookup)(name).is_some() {
                format!("\"{name}\" is an indicator, not a function")
            } else if NamedMetric::from_name(name).is_some() {
                format!("\"{name}\" is a named metric, not a function")
            } else {
                let lower = name.to_ascii_lowercase();
                let hint = if lower != name && Function::from_name(&lower).is_some() {
                    format!("; names are lower-case: \"{lower}\"")
                } else {
                    let names: Vec<&str> = Function::ALL.iter().map(|f| f.name()).collect();
                    format!("; the functions are {}", names.join(", "))
                };
                format!("unknown function \"{name}\"{hint}")
            };
            return error(pos, message);
        };
        if depth >= MAX_DEPTH {
            return error(pos, format!("functions nest at most {MAX_DEPTH} deep"));
        }
        self.advance(); // the "(" seen by the caller
        let signature = function.signature();
        let params = function.params();
        let count = params.len();
        let plural = if count == 1 { "argument" } else { "arguments" };
        let mut args: Vec<Parsed> = Vec::with_capacity(count);
        for (i, param) in params.iter().enumerate() {
            if i > 0 {
                let token = self.advance();
                match token.tok {
                    Tok::Comma => {}
                    Tok::Close => {
                        return error(
                            token.pos,
                            format!("{signature} takes {count} {plural}, found {i}"),
                        );
                    }
                    Tok::End => return error(token.pos, "expected \",\""),
                    other => {
                        return error(
                            token.pos,
                            format!("expected \",\", found {}", other.describe()),
                        );
                    }
                }
            }
            let token = self.peek().clone();
            match (param, &token.tok) {
                (_, Tok::Close) if i == 0 => {
                    return error(
                        token.pos,
                        format!("{signature} takes {count} {plural}, found none"),
                    );
                }
                (Param::Series(x), Tok::Number(text)) => {
                    return error(
                        token.pos,
                        format!(
                            "{signature} needs an indicator, metric or function as {x}, \
                             not the number {text}"
                        ),
                    );
                }
                (Param::Series(_), _) => {
                    let arg = self.series(depth + 1)?;
                    check_argument(function, &arg, token.pos)?;
                    args.push(arg);
                }
                (Param::Years(n), Tok::Number(text)) => {
                    self.advance();
                    let years = parse_years(text).ok_or_else(|| MetricError {
                        position: token.pos,
                        message: format!(
                            "{n} must be a whole number of years from 1 to {MAX_CAGR_YEARS}, \
                             found {text}"
                        ),
                    })?;
                    args.push(Parsed {
                        expr: Expr::Number(f64::from(years)),
                        unit: String::new(),
                        direction: Direction::HigherIsBetter,
                        cumulative: false,
                        additive: false,
                    });
                }
                (Param::Status(name), Tok::Name(text)) => {
                    self.advance();
                    let status = ProjectStatus::parse(text).map_err(|_| MetricError {
                        position: token.pos,
                        message: format!(
                            "{signature} needs a project status as {name}, found \"{text}\"; \
                             the statuses are {}",
                            status_names()
                        ),
                    })?;
                    args.push(Parsed {
                        expr: Expr::Status(status),
                        unit: String::new(),
                        direction: Direction::HigherIsBetter,
                        cumulative: false,
                        additive: false,
                    });
                }
                (Param::Status(name), other) => {
                    return error(
                        token.pos,
                        format!(
                            "{signature} needs a project status as {name}, found {}; \
                             the statuses are {}",
                            other.describe(),
                            status_names()
                        ),
                    );
                }
                (Param::Years(n), other) => {
                    return error(
                        token.pos,
                        format!(
                            "{signature} needs a whole number of years as {n}, found {}",
                            other.describe()
                        ),
                    );
                }
            }
        }
        let token = self.advance();
        match token.tok {
            Tok::Close => {}
            Tok::Comma => {
                return error(
                    token.pos,
                    format!("{signature} takes {count} {plural}, found more"),
                );
            }
            Tok::End => return error(token.pos, "expected \")\""),
            other => {
                return error(
                    token.pos,
                    format!("expected \")\", found {}", other.describe()),
                );
            }
        }
        Ok(combine(function, args))
    }
}

/// Refuses arguments that make the function meaningless, at the argument's position.
fn check_argument(function: Function, arg: &Parsed, pos: usize) -> Result<(), MetricError> {
    if function == Function::ZonesTotal && is_zones_total(&arg.expr) {
        return error(
            pos,
            "zones_total(x) sums figures of zones, which have no zones within them; \
             x cannot itself be a zones_total",
        );
    }
    if function.needs_additive() && !arg.additive {
        return error(
            pos,
            format!(
                "{} needs x to be a flow or stock indicator or a zones_total(…), \
                 which add up; \"{}\" does not",
                function.signature(),
                arg.expr
            ),
        );
    }
    Ok(())
}

/// Whether the expression is a `zones_total(…)` call, whose "whole" is the region's own figure.
pub(crate) fn is_zones_total(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Call {
            function: Function::ZonesTotal,
            ..
        }
    )
}

/// The project statuses as written in expressions: "negotiating, signed, …".
fn status_names() -> String {
    ProjectStatus::ALL
        .iter()
        .map(|s| s.as_str().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_years(text: &str) -> Option<u32> {
    let years: u32 = text.parse().ok()?;
    (1..=MAX_CAGR_YEARS).contains(&years).then_some(years)
}

/// Joins two units with "/", bracketing a side that is already a quotient so that
/// "万元/亩" over "人" does not read as 万元 per (亩/人).
fn quotient_unit(numerator: &str, denominator: &str) -> String {
    let side = |unit: &str| {
        if unit.contains('/') {
            format!("({unit})")
        } else {
            unit.to_owned()
        }
    };
    format!("{}/{}", side(numerator), side(denominator))
}

/// The unit, direction and accumulation of a call, from those of its arguments.
fn combine(function: Function, args: Vec<Parsed>) -> Parsed {
    let first = &args[0];
    let direction = first.direction;
    let (unit, cumulative, additive) = match function {
        Function::Yoy
        | Function::Share
        | Function::Contribution
        | Function::Cagr
        | Function::Percent => ("%".to_owned(), false, false),
        Function::PerMu => (quotient_unit(&first.unit, "亩"), false, false),
        Function::Ratio => (quotient_unit(&first.unit, &args[1].unit), false, false),
        Function::ZonesTotal => (first.unit.clone(), first.cumulative, true),
        Function::Lq => (String::new(), false, false),
        Function::ShiftShare => (first.unit.clone(), false, false),
        Function::Projects => ("个".to_owned(), false, false),
        Function::ProjectInvestment | Function::ProjectCompletedInvestment => {
            ("万元".to_owned(), false, false)
        }
    };
    Parsed {
        expr: Expr::Call {
            function,
            args: args.into_iter().map(|arg| arg.expr).collect(),
        },
        unit,
        direction,
        cumulative,
        additive,
    }
}

/// One entry of the metric catalog served by ListMetrics.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricDefinition {
    /// How it is written, e.g. "yoy(x)" or "energy_intensity".
    pub name: &'static str,
    /// How it is computed, e.g. "(x(p) − x(p − 1 year)) ÷ x(p − 1 year) × 100".
    pub formula: &'static str,
    /// The unit of its values; for functions it may name x's unit, e.g. "unit of x/亩".
    pub unit: &'static str,
    /// Which way it improves; `None` when it takes the direction of its argument x.
    pub direction: Option<Direction>,
    /// What it means, for the user.
    pub description: &'static str,
}

/// The functions and named metrics of the expression language, for ListMetrics.
pub fn metric_catalog() -> Vec<MetricDefinition> {
    let functions = Function::ALL.into_iter().map(|function| {
        let (formula, unit, description) = match function {
            Function::Yoy => (
                "(x(p) − x(p − 1 year)) ÷ x(p − 1 year) × 100",
                "%",
                "Year-on-year growth (同比增长): change against the same span one year earlier.",
            ),
            Function::Share => (
                "x(entity) ÷ x(parent region) × 100; for zones_total(y) on a region: \
                 zones_total(y) ÷ y(region) × 100",
                "%",
                "Share of the whole (占比): a zone's share of its region, or a region's zones' \
                 share of the region's own figure.",
            ),
            Function::Contribution => (
                "(x(p) − x(p − 1 year)) ÷ (the same change of the whole) × 100",
                "%",
                "Contribution to growth (贡献率): the entity's part of the whole's change.",
            ),
            Function::PerMu => (
                "x ÷ land_area",
                "unit of x/亩",
                "Per mu of industrial land (亩均), e.g. per_mu(tax) is 亩均税收.",
            ),
            Function::Ratio => (
                "x ÷ y",
                "unit of x/unit of y",
                "One series divided by another.",
            ),
            Function::Percent => ("x ÷ y × 100", "%", "One series as a percentage of another."),
            Function::Cagr => (
                "((x(p) ÷ x(p − n years))^(1/n) − 1) × 100",
                "%",
                "Compound annual growth rate over n years; n is a whole number.",
            ),
            Function::ZonesTotal => (
                "Σ x over the zones within the region",
                "unit of x",
                "A region's figure summed over the zones inside it, beside the region's own \
                 figure.",
            ),
            Function::Lq => (
                "(x(zone) ÷ x(region)) ÷ (Σ x over the zones of the region's parent ÷ \
                 x(region's parent))",
                "",
                "Location quotient (区位熵) of a zone: its share of its region's x against the \
                 share all zones hold one level up; above 1 means more concentrated there.",
            ),
            Function::ShiftShare => (
                "(x(p) − x(p − 1 year)) − x(p − 1 year) × region's growth rate of x",
                "unit of x",
                "Shift-share differential: the actual change minus the expected change (the \
                 start × the enclosing region's growth rate); positive means it outgrew its \
                 region.",
            ),
            Function::Projects => (
                "number of the zone's projects holding status in p; for a region, summed over \
                 its zones",
                "个",
                "Project pipeline: how many projects are planned, negotiating, signed, \
                 started, under_construction or completed in the period, e.g. projects(signed).",
            ),
            Function::ProjectInvestment => (
                "Σ planned investment of the projects holding status in p",
                "万元",
                "Planned investment of the pipeline at one status, e.g. \
                 project_investment(signed) (签约项目总投资).",
            ),
            Function::ProjectCompletedInvestment => (
                "Σ completed investment of the projects holding status in p",
                "万元",
                "Investment completed so far by the projects at one status, e.g. \
                 project_completed_investment(under_construction) (在建项目已完成投资).",
            ),
        };
        MetricDefinition {
            name: function.signature(),
            formula,
            unit,
            direction: None,
            description,
        }
    });
    let named = NamedMetric::ALL.into_iter().map(|metric| {
        let (formula, description) = match metric {
            NamedMetric::InvestmentIntensity => (
                "fixed_asset_investment ÷ land_area",
                "Investment intensity (投资强度): per_mu(fixed_asset_investment).",
            ),
            NamedMetric::EnergyIntensity => (
                "energy_consumption ÷ value_added",
                "Energy intensity (单位增加值能耗): ratio(energy_consumption, value_added).",
            ),
            NamedMetric::EnergyIntensityChange => (
                "(energy_intensity(p) − energy_intensity(p − 1 year)) ÷ \
                 energy_intensity(p − 1 year) × 100",
                "Change of energy intensity (单位增加值能耗增速): yoy(energy_intensity); \
                 −4 means a 4% decline.",
            ),
            NamedMetric::LaborProductivity => (
                "value_added ÷ employees",
                "Labour productivity (全员劳动生产率): ratio(value_added, employees).",
            ),
            NamedMetric::RdIntensity => (
                "rd_expenditure ÷ revenue × 100",
                "R&D intensity (研发投入强度): percent(rd_expenditure, revenue).",
            ),
            NamedMetric::LeadingIndustryShare => (
                "leading_industry_output ÷ output_value × 100",
                "Leading-industry share (主导产业占比): \
                 percent(leading_industry_output, output_value).",
            ),
            NamedMetric::ValueAddedPerEnergy => (
                "value_added ÷ energy_consumption",
                "Value added per tonne of standard coal (单位能耗增加值): \
                 ratio(value_added, energy_consumption).",
            ),
        };
        MetricDefinition {
            name: metric.name(),
            formula,
            unit: metric.unit(),
            direction: Some(metric.direction()),
            description,
        }
    });
    functions.chain(named).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::builtin_indicator;

    fn parse(text: &str) -> Result<Metric, MetricError> {
        parse_metric(text, &builtin_indicator)
    }

    fn ok(text: &str) -> Metric {
        parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn fails(text: &str) -> MetricError {
        match parse(text) {
            Ok(metric) => panic!("{text} parsed as {}", metric.text),
            Err(e) => e,
        }
    }

    fn ind(code: &str) -> Expr {
        Expr::Indicator(code.to_owned())
    }

    #[test]
    fn parses_a_plain_indicator() {
        let metric = ok("revenue");
        assert_eq!(metric.expr, ind("revenue"));
        assert_eq!(metric.text, "revenue");
        assert_eq!(metric.unit, "万元");
        assert_eq!(metric.direction, Direction::HigherIsBetter);
        assert!(metric.cumulative);
    }

    #[test]
    fn parses_nested_calls_into_the_tree() {
        assert_eq!(
            ok("yoy(per_mu(tax))").expr,
            Expr::Call {
                function: Function::Yoy,
                args: vec![Expr::Call {
                    function: Function::PerMu,
                    args: vec![ind("tax")]
                }]
            }
        );
        assert_eq!(
            ok("cagr(revenue, 5)").expr,
            Expr::Call {
                function: Function::Cagr,
                args: vec![ind("revenue"), Expr::Number(5.0)]
            }
        );
        assert_eq!(
            ok("energy_intensity").expr,
            Expr::Named(NamedMetric::EnergyIntensity)
        );
    }

    #[test]
    fn normalizes_whitespace_and_full_width_punctuation() {
        for (text, normal) in [
            ("  yoy ( per_mu(  tax ) ) ", "yoy(per_mu(tax))"),
            ("cagr(revenue,5)", "cagr(revenue, 5)"),
            ("cagr( revenue ,\t05 )", "cagr(revenue, 5)"),
            (
                "ratio(\nvalue_added,employees)",
                "ratio(value_added, employees)",
            ),
            (
                "share（zones_total（revenue））",
                "share(zones_total(revenue))",
            ),
            ("ratio(tax，revenue)", "ratio(tax, revenue)"),
            ("\u{3000}energy_intensity\u{3000}", "energy_intensity"),
            (
                "yoy(zones_total(fixed_asset_investment))",
                "yoy(zones_total(fixed_asset_investment))",
            ),
        ] {
            assert_eq!(ok(text).text, normal, "{text}");
            // The normalized spelling parses back to itself.
            assert_eq!(ok(normal).text, normal);
        }
    }

    #[test]
    fn units_follow_the_functions() {
        for (text, unit) in [
            ("per_mu(tax)", "万元/亩"),
            ("per_mu(employees)", "人/亩"),
            ("yoy(revenue)", "%"),
            ("share(tax)", "%"),
            ("contribution(revenue)", "%"),
            ("cagr(revenue, 5)", "%"),
            ("percent(tax, revenue)", "%"),
            ("ratio(value_added, employees)", "万元/人"),
            ("ratio(energy_consumption, value_added)", "吨标准煤/万元"),
            ("ratio(per_mu(tax), employees)", "(万元/亩)/人"),
            ("zones_total(fixed_asset_investment)", "万元"),
            ("zones_total(employees)", "人"),
            ("per_mu(zones_total(tax))", "万元/亩"),
            ("yoy(per_mu(tax))", "%"),
            ("investment_intensity", "万元/亩"),
            ("energy_intensity", "吨标准煤/万元"),
            ("energy_intensity_change", "%"),
            ("labor_productivity", "万元/人"),
            ("rd_intensity", "%"),
            ("leading_industry_share", "%"),
            ("value_added_per_energy", "万元/吨标准煤"),
            ("fdi_actual", "万美元"),
        ] {
            assert_eq!(ok(text).unit, unit, "{text}");
        }
    }

    #[test]
    fn directions_are_inherited_unless_named() {
        use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};
        for (text, direction) in [
            ("energy_consumption", Lower),
            ("yoy(energy_consumption)", Lower),
            ("share(energy_consumption)", Lower),
            ("per_mu(energy_consumption)", Lower),
            ("ratio(energy_consumption, tax)", Lower),
            ("ratio(tax, energy_consumption)", Higher),
            ("zones_total(energy_consumption)", Lower),
            ("yoy(energy_intensity)", Lower),
            ("energy_intensity", Lower),
            ("energy_intensity_change", Lower),
            ("value_added_per_energy", Higher),
            ("investment_intensity", Higher),
            ("labor_productivity", Higher),
            ("rd_intensity", Higher),
            ("leading_industry_share", Higher),
            ("yoy(per_mu(tax))", Higher),
        ] {
            assert_eq!(ok(text).direction, direction, "{text}");
        }
    }

    #[test]
    fn only_flows_and_zone_totals_of_flows_are_cumulative() {
        for (text, cumulative) in [
            ("revenue", true),
            ("zones_total(fixed_asset_investment)", true),
            ("employees", false),
            ("land_area", false),
            ("sewage_treatment_rate", false),
            ("zones_total(employees)", false),
            ("yoy(revenue)", false),
            ("share(revenue)", false),
            ("contribution(revenue)", false),
            ("per_mu(tax)", false),
            ("ratio(tax, revenue)", false),
            ("cagr(revenue, 3)", false),
            ("investment_intensity", false),
        ] {
            assert_eq!(ok(text).cumulative, cumulative, "{text}");
        }
    }

    #[test]
    fn indicators_come_from_the_callers_catalog() {
        let only_tax = |code: &str| builtin_indicator(code).filter(|i| i.code == "tax");
        assert!(parse_metric("per_mu(tax)", &only_tax).is_ok());
        assert_eq!(
            parse_metric("revenue", &only_tax).unwrap_err().to_string(),
            "at position 0: unknown indicator or metric \"revenue\""
        );
        // A catalog indicator wins over a named metric of the same name.
        let custom = |code: &str| {
            (code == "energy_intensity").then(|| {
                Indicator::define(
                    "energy_intensity",
                    "能耗强度",
                    "Energy intensity",
                    "tce",
                    IndicatorKind::Stock,
                    Direction::LowerIsBetter,
                )
                .unwrap()
            })
        };
        assert_eq!(
            parse_metric("energy_intensity", &custom).unwrap().expr,
            ind("energy_intensity")
        );
    }

    #[test]
    fn reports_the_position_of_syntax_errors() {
        for (text, message) in [
            ("yoy(revenue", "at position 11: expected \")\""),
            ("share(tax", "at position 9: expected \")\""),
            (
                "yoy()",
                "at position 4: yoy(x) takes 1 argument, found none",
            ),
            (
                "foo(x)",
                "at position 0: unknown function \"foo\"; the functions are yoy, share, \
                 contribution, per_mu, ratio, percent, cagr, zones_total, lq, shift_share, \
                 projects, project_investment, project_completed_investment",
            ),
            (
                "ratio(tax)",
                "at position 9: ratio(x, y) takes 2 arguments, found 1",
            ),
            (
                "cagr(revenue, x)",
                "at position 14: cagr(x, n) needs a whole number of years as n, found \"x\"",
            ),
            ("yoy(revenue))", "at position 12: unmatched \")\""),
            (
                "reveune",
                "at position 0: unknown indicator or metric \"reveune\"",
            ),
            (
                "yoy(reveune)",
                "at position 4: unknown indicator or metric \"reveune\"",
            ),
            (
                "yoy(revenue, tax)",
                "at position 11: yoy(x) takes 1 argument, found more",
            ),
            (
                "ratio(tax revenue)",
                "at position 10: expected \",\", found \"revenue\"",
            ),
            (
                "ratio(tax,",
                "at position 10: expected an indicator, metric or function",
            ),
            (
                "yoy(revenue tax)",
                "at position 12: expected \")\", found \"tax\"",
            ),
            (
                "yoy(5)",
                "at position 4: yoy(x) needs an indicator, metric or function as x, \
                 not the number 5",
            ),
            (
                "5",
                "at position 0: expected an indicator, metric or function, found the number 5",
            ),
            (
                "ratio(tax, 2)",
                "at position 11: ratio(x, y) needs an indicator, metric or function as y, \
                 not the number 2",
            ),
            (
                "cagr(revenue, 0)",
                "at position 14: n must be a whole number of years from 1 to 300, found 0",
            ),
            (
                "cagr(revenue, 2.5)",
                "at position 14: n must be a whole number of years from 1 to 300, found 2.5",
            ),
            (
                "cagr(revenue, 301)",
                "at position 14: n must be a whole number of years from 1 to 300, found 301",
            ),
            (
                "yoy(revenue) tax",
                "at position 13: unexpected \"tax\" after the end of the expression",
            ),
            (
                "yoy(税收)",
                "at position 4: expected an indicator, metric or function, found the character \
                 '税'; names are English codes such as tax or output_value",
            ),
            ("tax * 100", "at position 4: unexpected character '*'"),
            (
                "yoy(tax$)",
                "at position 7: expected \")\", found the character '$'",
            ),
            ("yoy", "at position 0: yoy is a function; write yoy(x)"),
            (
                "revenue(tax)",
                "at position 0: \"revenue\" is an indicator, not a function",
            ),
            (
                "energy_intensity(tax)",
                "at position 0: \"energy_intensity\" is a named metric, not a function",
            ),
            (
                "Revenue",
                "at position 0: unknown indicator or metric \"Revenue\"; names are lower-case: \
                 \"revenue\"",
            ),
            (
                "YOY(tax)",
                "at position 0: unknown function \"YOY\"; names are lower-case: \"yoy\"",
            ),
            (
                "(tax)",
                "at position 0: expected an indicator, metric or function, found \"(\"",
            ),
            (
                "",
                "at position 0: the metric is empty; write an indicator code such as revenue, or an expression such as yoy(revenue)",
            ),
            (
                "   ",
                "at position 0: the metric is empty; write an indicator code such as revenue, or an expression such as yoy(revenue)",
            ),
        ] {
            assert_eq!(fails(text).to_string(), message, "{text}");
        }
    }

    #[test]
    fn project_functions_take_a_status() {
        for (text, normal, unit) in [
            ("projects(signed)", "projects(signed)", "个"),
            ("projects( NEGOTIATING )", "projects(negotiating)", "个"),
            (
                "project_investment(PROJECT_STATUS_STARTED)",
                "project_investment(started)",
                "万元",
            ),
            (
                "project_completed_investment(under_construction)",
                "project_completed_investment(under_construction)",
                "万元",
            ),
            ("yoy(projects(started))", "yoy(projects(started))", "%"),
            (
                "ratio(project_completed_investment(under_construction), \
                 project_investment(under_construction))",
                "ratio(project_completed_investment(under_construction), \
                 project_investment(under_construction))",
                "万元/万元",
            ),
        ] {
            let metric = ok(text);
            assert_eq!(metric.text, normal, "{text}");
            assert_eq!(metric.unit, unit, "{text}");
            assert!(!metric.cumulative, "{text}");
            assert_eq!(ok(normal).text, normal);
        }
        assert_eq!(
            ok("projects(signed)").expr,
            Expr::Call {
                function: Function::Projects,
                args: vec![Expr::Status(ProjectStatus::Signed)]
            }
        );
        for (text, message) in [
            (
                "projects(done)",
                "at position 9: projects(status) needs a project status as status, found \
                 \"done\"; the statuses are negotiating, signed, started, under_construction, \
                 completed, planned",
            ),
            (
                "project_investment(5)",
                "at position 19: project_investment(status) needs a project status as status, \
                 found the number 5; the statuses are negotiating, signed, started, \
                 under_construction, completed, planned",
            ),
            (
                "projects()",
                "at position 9: projects(status) takes 1 argument, found none",
            ),
            (
                "projects(signed, started)",
                "at position 15: projects(status) takes 1 argument, found more",
            ),
        ] {
            assert_eq!(fails(text).to_string(), message, "{text}");
        }
        // A region's projects already sum its zones'; a zones_total of them is refused.
        assert!(
            fails("zones_total(projects(signed))")
                .message
                .contains("which add up")
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        // "（" is three bytes in UTF-8 but one character.
        let err = fails("yoy（reveune）");
        assert_eq!(err.position, 4);
        assert_eq!(fails("yoy（revenue").position, 11);
    }

    #[test]
    fn shares_and_totals_need_quantities_that_add_up() {
        for (text, position) in [
            ("share(yoy(tax))", 6),
            ("share(sewage_treatment_rate)", 6),
            ("contribution(energy_intensity)", 13),
            ("per_mu(ratio(tax, revenue))", 7),
            ("zones_total(per_mu(tax))", 12),
            ("zones_total(emission_compliance_rate)", 12),
        ] {
            let err = fails(text);
            assert_eq!(err.position, position, "{text}");
            assert!(err.message.contains("which add up"), "{text}: {err}");
        }
        let err = fails("zones_total(zones_total(tax))");
        assert_eq!(err.position, 12);
        assert!(err.message.contains("cannot itself be a zones_total"));
        // Stocks and zone totals do add up.
        for text in [
            "share(employees)",
            "share(zones_total(revenue))",
            "contribution(zones_total(revenue))",
            "per_mu(zones_total(tax))",
            "yoy(share(tax))",
        ] {
            ok(text);
        }
    }

    #[test]
    fn limits_nesting_depth() {
        let nested = |depth: usize| format!("{}tax{}", "yoy(".repeat(depth), ")".repeat(depth));
        ok(&nested(MAX_DEPTH));
        let err = fails(&nested(MAX_DEPTH + 1));
        assert_eq!(err.position, 4 * MAX_DEPTH);
        assert!(err.message.contains("nest at most 16"));
        // Far deeper text fails the same way instead of overflowing the stack.
        assert!(parse(&nested(100_000)).is_err());
    }

    #[test]
    fn named_metrics_expand_to_their_definitions() {
        for (metric, definition) in [
            (
                NamedMetric::InvestmentIntensity,
                "per_mu(fixed_asset_investment)",
            ),
            (
                NamedMetric::EnergyIntensity,
                "ratio(energy_consumption, value_added)",
            ),
            (NamedMetric::EnergyIntensityChange, "yoy(energy_intensity)"),
            (
                NamedMetric::LaborProductivity,
                "ratio(value_added, employees)",
            ),
            (NamedMetric::RdIntensity, "percent(rd_expenditure, revenue)"),
            (
                NamedMetric::LeadingIndustryShare,
                "percent(leading_industry_output, output_value)",
            ),
            (
                NamedMetric::ValueAddedPerEnergy,
                "ratio(value_added, energy_consumption)",
            ),
        ] {
            assert_eq!(metric.definition().to_string(), definition);
            // The definition parses against the built-in catalog to the same unit.
            let parsed = ok(definition);
            assert_eq!(parsed.expr, *metric.definition());
            assert_eq!(parsed.unit, metric.unit(), "{metric}");
            assert_eq!(NamedMetric::from_name(metric.name()), Some(metric));
        }
    }

    #[test]
    fn the_catalog_lists_every_function_and_named_metric() {
        let catalog = metric_catalog();
        assert_eq!(catalog.len(), Function::ALL.len() + NamedMetric::ALL.len());
        let yoy = catalog.iter().find(|d| d.name == "yoy(x)").unwrap();
        assert_eq!(yoy.formula, "(x(p) − x(p − 1 year)) ÷ x(p − 1 year) × 100");
        assert_eq!(yoy.unit, "%");
        assert_eq!(yoy.direction, None);
        let intensity = catalog
            .iter()
            .find(|d| d.name == "energy_intensity")
            .unwrap();
        assert_eq!(intensity.unit, "吨标准煤/万元");
        assert_eq!(intensity.direction, Some(Direction::LowerIsBetter));
        for definition in &catalog {
            assert!(!definition.formula.is_empty() && !definition.description.is_empty());
        }
        for function in Function::ALL {
            assert_eq!(Function::from_name(function.name()), Some(function));
            assert!(catalog.iter().any(|d| d.name == function.signature()));
        }
    }
}
