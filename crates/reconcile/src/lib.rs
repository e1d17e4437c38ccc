//! observe -> diff -> plan -> execute. Generic over [`moodlestack_model::Cloud`]: nothing here
//! knows an AWS service.
