//! Parameters the operator supplies, and secrets read from the environment or a file.

use schemars::JsonSchema;

use super::Spanned;
use crate::yaml::{Node, Span};

/// The declared type of a parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Int,
    Bool,
    List,
    Map,
}

impl ParamType {
    pub const NAMES: &'static [&'static str] = &["string", "int", "bool", "list", "map"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "string" => Some(Self::String),
            "int" => Some(Self::Int),
            "bool" => Some(Self::Bool),
            "list" => Some(Self::List),
            "map" => Some(Self::Map),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Int => "int",
            Self::Bool => "bool",
            Self::List => "list",
            Self::Map => "map",
        }
    }
}

/// One entry of `params:`.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Param {
    #[schemars(skip)]
    pub name: Spanned<String>,
    /// `string` (the default), `int`, `bool`, `list` or `map`.
    #[serde(rename = "type")]
    pub ty: Option<Spanned<ParamType>>,
    /// The value used when the operator gives none; a param with a default is optional.
    pub default: Option<Node>,
    pub description: Option<Spanned<String>>,
    /// An example value, shown in help and used by `plan` when no value is given.
    pub example: Option<Node>,
    /// The only values allowed.
    #[serde(rename = "enum")]
    pub allowed: Option<Spanned<Vec<Node>>>,
    /// A regular expression a string value must match in full.
    pub pattern: Option<Spanned<String>>,
    /// Whether the operator must give a value; defaults to true when there is no `default`.
    pub required: Option<Spanned<bool>>,
}

impl Param {
    pub fn param_type(&self) -> ParamType {
        self.ty.as_ref().map_or(ParamType::String, |t| t.value)
    }

    pub fn is_required(&self) -> bool {
        self.required
            .as_ref()
            .map_or(self.default.is_none(), |r| r.value)
    }
}

/// One entry of `secrets:`: exactly one of `env` and `file`.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Secret {
    #[schemars(skip)]
    pub name: Spanned<String>,
    /// The environment variable that holds the value.
    pub env: Option<Spanned<String>>,
    /// A file whose content (without the final newline) is the value.
    pub file: Option<Spanned<String>>,
    #[schemars(skip)]
    pub span: Span,
}

/// Where a secret's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum SecretSource<'a> {
    Env(&'a str),
    File(&'a str),
}

impl Secret {
    pub fn source(&self) -> Option<SecretSource<'_>> {
        match (&self.env, &self.file) {
            (Some(env), None) => Some(SecretSource::Env(env)),
            (None, Some(file)) => Some(SecretSource::File(file)),
            _ => None,
        }
    }
}
