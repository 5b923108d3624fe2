//! What plugins get beside their config: the context of a resource or hook provider, of an
//! asset type and of a check kind, and the rule that keeps their paths inside the project.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::PluginError;
use crate::diagnostic::SourceFile;
use crate::source::{Node, from_node};

/// What a plugin's `create` gets beside its config.
#[derive(Debug, Clone)]
pub struct PluginContext {
    /// The plugin's name.
    pub name: String,
    /// The project directory (paths in configs are relative to it).
    pub project_dir: PathBuf,
    /// `paths.allow_outside_project` of phlo.yaml: paths may leave the project directory.
    pub allow_outside_project: bool,
    pub(super) config: Option<Node>,
    pub(super) source: Option<Arc<SourceFile>>,
}

/// Resolves `path` (the value of config key `key`) against the project directory, refusing
/// an absolute path or one whose `..` leave the directory unless `allow_outside` (the check is
/// on the text: a symbolic link inside the project is followed like any file).
///
/// # Errors
/// [`PluginError::Invalid`] at `key`, naming the path and the opt-out.
pub fn path_in_project(
    project_dir: &Path,
    key: &str,
    path: &Path,
    allow_outside: bool,
) -> Result<PathBuf, PluginError> {
    let p = path;
    let mut depth: i64 = 0;
    let mut escapes = p.is_absolute() || p.has_root();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::Prefix(_) | std::path::Component::RootDir => escapes = true,
            std::path::Component::CurDir => {}
        }
        escapes |= depth < 0;
    }
    if escapes && !allow_outside {
        return Err(PluginError::invalid(
            key,
            format!("`{}` is outside the project directory", path.display()),
            "keep the project's files inside its directory (paths are relative to phlo.yaml), or allow it for \
             the whole project with `paths: {allow_outside_project: true}`",
        ));
    }
    Ok(project_dir.join(p))
}

impl PluginContext {
    /// A context with no config section (tests, embedders).
    pub fn new(name: impl Into<String>, project_dir: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            project_dir: project_dir.into(),
            allow_outside_project: false,
            config: None,
            source: None,
        }
    }

    /// The file or directory `path` (the value of config key `key`), relative to the project
    /// directory and inside it; see [`path_in_project`].
    ///
    /// # Errors
    /// A path outside the project directory, unless the project allows it.
    pub fn project_path(&self, key: &str, path: impl AsRef<Path>) -> Result<PathBuf, PluginError> {
        path_in_project(&self.project_dir, key, path.as_ref(), self.allow_outside_project)
    }

    /// Reads the config section as `T`; an absent section reads as an empty mapping.
    pub(super) fn read<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let empty = Node::empty_map();
        let node = self.config.as_ref().unwrap_or(&empty);
        let source = self.source.clone().unwrap_or_else(|| SourceFile::new("<no project file>", ""));
        from_node(node, &source, &[]).map_err(PluginError::Config)
    }
}

/// What an asset type's `build` gets beside its config.
#[derive(Debug, Clone, Default)]
pub struct AssetTypeContext {
    /// The asset key from phlo.yaml.
    pub key: String,
    /// The project directory.
    pub project_dir: PathBuf,
    /// Where each of the entry's own keys' values is written (`phlo.yaml:14:10`), so that
    /// errors at run time can point at the line too.
    pub locations: std::collections::BTreeMap<String, String>,
    /// `paths.allow_outside_project` of phlo.yaml.
    pub allow_outside_project: bool,
    /// How the asset is partitioned (`partitions:` of its entry).
    pub partitions: crate::spec::PartitionSpec,
    /// The asset keys its entry lists in `deps:` (an input file an upstream step produces
    /// need not exist when the project loads).
    pub deps: Vec<String>,
}

impl AssetTypeContext {
    /// The file or directory `path` (the value of key `key`) inside the project; see
    /// [`path_in_project`].
    ///
    /// # Errors
    /// A path outside the project directory, unless the project allows it.
    pub fn project_path(&self, key: &str, path: impl AsRef<Path>) -> Result<PathBuf, PluginError> {
        path_in_project(&self.project_dir, key, path.as_ref(), self.allow_outside_project)
    }

    /// Where the value of the entry's key `field` is written, e.g. `phlo.yaml:14:10`.
    pub fn location(&self, field: &str) -> Option<&str> {
        self.locations.get(field).map(String::as_str)
    }
}

/// What a check kind's `build` gets beside its config.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// The asset the check belongs to.
    pub asset: String,
    /// The asset's table (its `table` metadata, else its key with `.` → `_`).
    pub table: String,
    /// The check's name.
    pub name: String,
    /// Where the check is written (`phlo.yaml:12:9`), when it is.
    pub location: Option<String>,
    /// The asset's partitions: a check runs per partition, and SQL it runs may use
    /// `{partition}`, `{partition_start}` and `{partition_end}`.
    pub partitions: crate::spec::PartitionSpec,
    /// The column of the asset's table that tags each row with its partition key (see
    /// [`AssetSpec::partition_column`](crate::spec::AssetSpec::partition_column)): a check of
    /// one partition reads only the rows it tags.
    pub partition_column: Option<String>,
}

impl CheckContext {
    /// A context for `asset`'s check `name` on `table`, unpartitioned and written nowhere (for
    /// tests and hand-built registries).
    pub fn new(asset: impl Into<String>, table: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            asset: asset.into(),
            table: table.into(),
            name: name.into(),
            location: None,
            partitions: crate::spec::PartitionSpec::None,
            partition_column: None,
        }
    }
}
